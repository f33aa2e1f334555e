//! `memory freeze|unfreeze` and `memory update` in both modes: frozen (`memory.enabled`
//! false), `memory_content` stays exactly as it is whatever runs (loops, summaries, update,
//! set, clear), until `memory unfreeze`.

use vibectl::config::generated::client::key;

use super::scripted::{AUTO, CHECK, MEMORY, command, done, in_both_modes, prompts_with};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn frozen_memory_stays_as_it_is_until_unfreeze() {
    let memory = ["REWRITTEN BY THE MODEL".to_owned()];
    let steps = [command(&["get", "pods"]), done(Some(0), "fine")];
    let rules: [(&str, &[String]); 3] = [(MEMORY, &memory), (CHECK, &steps), (AUTO, &steps)];
    in_both_modes(
        &rules,
        "memory_content: app in shop\n",
        |mode, client, mock| {
            let out = client.run(&["memory", "freeze"]);
            out.assert_success();
            assert!(out.stderr.contains("memory frozen"), "{out}");
            assert!(
                client.text().contains("enabled: false"),
                "{}",
                client.text()
            );
            let frozen = client.text();

            // Commands that would update the memory leave it alone.
            client.run(&["get", "pods"]).assert_success();
            assert_eq!(client.run(&["check", "pods run"]).status.code(), Some(0));
            client.run(&["auto", "-i", "0", "look"]).assert_success();
            assert_eq!(client.text(), frozen, "{mode:?}");
            assert!(
                block_on(prompts_with(mock, MEMORY)).is_empty(),
                "no memory call"
            );

            // Changing it by hand is refused, naming the key and the way out.
            for args in [
                &["memory", "update", "db moved"][..],
                &["memory", "set", "x"][..],
                &["memory", "clear"][..],
            ] {
                let out = client.fails(args);
                assert!(out.stderr.contains("the memory is frozen"), "{out}");
                assert!(out.stderr.contains(key::MEMORY_ENABLED), "{out}");
                assert!(out.stderr.contains("vibectl memory unfreeze"), "{out}");
            }

            client.run(&["memory", "unfreeze"]).assert_success();
            assert!(client.text().contains("enabled: true"), "{}", client.text());
            let out = client.run(&["memory", "update", "db moved to data"]);
            out.assert_success();
            assert_eq!(out.stdout, "REWRITTEN BY THE MODEL\n", "{mode:?}");
            let calls = block_on(prompts_with(mock, MEMORY));
            assert_eq!(calls.len(), 1, "{mode:?}");
            assert!(calls[0].contains("db moved to data") && calls[0].contains("app in shop"));
            assert!(client.text().contains("REWRITTEN BY THE MODEL"));
            assert!(client.text().contains(super::COMMENT), "comments kept");
        },
    );
}
