//! Prompt plugins in 0.11.6's file format: `plugin install|list|update|uninstall`, a bad file
//! refused naming the wrong field (and nothing written), and `plugins.precedence` deciding
//! whose prompt replaces the built-in one, seen in what the model receives, in direct mode and
//! through our server.

use serde_json::json;
use vibectl::config::generated::client::key;

use super::Client;
use super::scripted::{CHECK, done, in_both_modes, prompts_with};
use crate::support::yaml;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A plugin replacing the check prompt's task with `task`.
fn plugin(name: &str, version: &str, task: &str) -> serde_json::Value {
    json!({
        "plugin_metadata": {
            "name": name, "version": version, "description": format!("{name} demo"),
            "author": "tests", "compatible_vibectl_versions": ">=0.8.0,<1.0.0",
            "created_at": "2024-01-15T14:00:00Z"
        },
        "prompt_mappings": {
            "check_plan": {
                "description": "stricter checks",
                "task_description": task,
                "check_examples_data": [
                    ["", "is the registry reachable?",
                     {"action_type": "COMMAND", "commands": ["get", "pods", "-n", "registry"]}]
                ]
            }
        }
    })
}

fn write(client: &Client, file: &str, doc: &serde_json::Value) -> String {
    let path = client.path().join(file);
    std::fs::write(&path, doc.to_string()).expect("write the plugin");
    path.display().to_string()
}

fn installed(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(client.dir().join("plugins"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn install_list_update_uninstall() {
    let client = Client::with_pods();
    client.write("");
    let v1 = write(
        &client,
        "a1.json",
        &plugin("strict-check", "1.0.0", "TASK ONE"),
    );
    let out = client.run(&["plugin", "install", &v1]);
    out.assert_success();
    assert!(
        out.stderr
            .contains("installed strict-check 1.0.0 (1 prompt)"),
        "{out}"
    );
    assert_eq!(installed(&client), ["strict-check-1.0.0.json"]);

    let out = client.fails(&["plugin", "install", &v1]);
    assert!(out.stderr.contains("already installed"), "{out}");
    assert!(out.stderr.contains("vibectl plugin update"), "{out}");

    let out = client.run(&["plugin", "list"]);
    assert_eq!(
        out.assert_success().stdout,
        "strict-check 1.0.0  strict-check demo\n  check_plan\n"
    );

    let v2 = write(
        &client,
        "a2.json",
        &plugin("strict-check", "2.0.0", "TASK TWO"),
    );
    let out = client.run(&["plugin", "update", &v2]);
    assert!(
        out.assert_success()
            .stderr
            .contains("updated strict-check 2.0.0"),
        "{out}"
    );
    assert_eq!(installed(&client), ["strict-check-2.0.0.json"]);

    let other = write(&client, "o.json", &plugin("other", "1.0.0", "T"));
    let out = client.fails(&["plugin", "update", &other]);
    assert!(
        out.stderr.contains("no plugin named `other` is installed"),
        "{out}"
    );
    assert_eq!(installed(&client), ["strict-check-2.0.0.json"]);

    client
        .run(&["plugin", "uninstall", "strict-check"])
        .assert_success();
    assert!(installed(&client).is_empty());
    let out = client.fails(&["plugin", "uninstall", "strict-check"]);
    assert!(
        out.stderr.contains("no plugin named `strict-check`"),
        "{out}"
    );
}

#[test]
fn a_bad_plugin_file_is_refused_naming_the_field() {
    let client = Client::with_pods();
    client.write("");
    let mut doc = plugin("p", "1.0.0", "T");
    type Spoil = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "plugin_metadata.version",
            Box::new(|d| {
                d["plugin_metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("version");
            }),
        ),
        (
            "plugin_metadata.name",
            Box::new(|d| d["plugin_metadata"]["name"] = json!("../x")),
        ),
        (
            "prompt_mappings.check_plan.task_description",
            Box::new(|d| d["prompt_mappings"]["check_plan"]["task_description"] = json!(7)),
        ),
        (
            "plugin_metadata.compatible_vibectl_versions",
            Box::new(|d| d["plugin_metadata"]["compatible_vibectl_versions"] = json!(">=1.0.0")),
        ),
        (
            "prompt_mappings",
            Box::new(|d| d["prompt_mappings"] = json!({})),
        ),
    ];
    for (field, spoil) in cases {
        spoil(&mut doc);
        let path = write(&client, "bad.json", &doc);
        let out = client.fails(&["plugin", "install", &path]);
        assert!(
            out.stderr
                .contains(&format!("not a valid plugin: {field}:")),
            "{field}: {out}"
        );
        assert!(
            out.stderr.contains(&format!("fix the field `{field}`")),
            "{out}"
        );
        assert!(installed(&client).is_empty(), "nothing written");
        doc = plugin("p", "1.0.0", "T");
    }
    // A file too large to be a plugin is refused before it is parsed.
    let path = client.path().join("huge.json");
    std::fs::write(&path, " ".repeat(300 * 1024)).expect("write");
    let out = client.fails(&["plugin", "install", &path.display().to_string()]);
    assert!(out.stderr.contains("larger than"), "{out}");
}

#[test]
fn precedence_decides_whose_prompt_the_model_gets() {
    let replies = [done(Some(0), "yes")];
    for (precedence, winner, loser) in [
        (None, "TASK FROM ALPHA", "TASK FROM BETA"),
        (Some("[beta]"), "TASK FROM BETA", "TASK FROM ALPHA"),
    ] {
        let extra = match precedence {
            Some(p) => format!(
                "memory:\n  enabled: false\n{}",
                yaml::config(&[(key::PLUGINS_PRECEDENCE, p)])
            ),
            None => "memory:\n  enabled: false\n".to_owned(),
        };
        in_both_modes(&[(CHECK, &replies)], &extra, |mode, client, mock| {
            for (name, task) in [("alpha", "TASK FROM ALPHA"), ("beta", "TASK FROM BETA")] {
                let f = write(
                    client,
                    &format!("{name}.json"),
                    &plugin(name, "1.0.0", task),
                );
                client.run(&["plugin", "install", &f]).assert_success();
            }
            let out = client.run(&["check", "the registry is up"]);
            assert_eq!(out.status.code(), Some(0), "{mode:?}\n{out}");
            let prompts = block_on(prompts_with(mock, CHECK));
            assert!(prompts[0].contains(winner), "{mode:?}: {}", prompts[0]);
            assert!(!prompts[0].contains(loser));
            // The plugin's examples replace the built-in ones too.
            assert!(prompts[0].contains("is the registry reachable?"));
            assert!(!prompts[0].contains("good mood"), "built-in examples gone");

            let listed = client
                .run(&["plugin", "list"])
                .assert_success()
                .stdout
                .clone();
            let loser_name = if winner.contains("ALPHA") {
                "beta"
            } else {
                "alpha"
            };
            assert!(
                listed.contains(&format!(
                    "{loser_name} 1.0.0  {loser_name} demo\n  check_plan (another plugin wins)"
                )),
                "{listed}"
            );
        });
    }
    // Without plugins the built-in prompt is sent.
    in_both_modes(
        &[(CHECK, &replies)],
        "memory:\n  enabled: false\n",
        |_, client, mock| {
            client.run(&["check", "x"]);
            let prompts = block_on(prompts_with(mock, CHECK));
            assert!(prompts[0].contains("good mood"), "{}", prompts[0]);
        },
    );
}
