//! `get`, `vibe` and `just` in direct mode: what runs, what is printed, and how failures look.

use serde_json::Value;
use vibectl::config::generated::client::key;
use vibectl::llm::ProviderKind;

use super::{Client, PODS, plan_json};
use crate::support::mock::MockProvider;

/// The text of every message of an OpenAI-style request body, joined.
fn prompt_text(req: &Value) -> String {
    req["body"]["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn get_runs_kubectl_and_prints_the_summary_streamed_or_not() {
    let mock = MockProvider::start(&[]);
    let mut client = Client::with_pods();
    client.configure(&mock, true, "");
    let streamed = client.run(&["get", "pods"]);
    streamed.assert_success();
    assert_eq!(
        streamed.stdout, "Hello from the mock provider.\n",
        "{streamed}"
    );
    assert_eq!(client.kubectl_runs(), ["get pods"]);

    let reqs = mock.requests().await;
    // The summary, then the memory update (memory is on by default).
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0]["body"]["stream"], true);
    assert!(prompt_text(&reqs[0]).contains("web-2   1/1     Running   3"));
    assert_eq!(reqs[0]["body"]["model"], super::MODEL);
    let text = client.text();
    assert!(
        text.contains(super::COMMENT) && text.contains("# the fake one"),
        "{text}"
    );
    assert!(
        text.contains("Hello from the mock provider."),
        "memory saved: {text}"
    );

    client.env = vec![
        ("VIBECTL_DISPLAY_SHOW_STREAMING".into(), "false".into()),
        ("VIBECTL_DISPLAY_SHOW_METRICS".into(), "all".into()),
    ];
    let whole = client.run(&["get", "pods"]);
    whole.assert_success();
    assert_eq!(whole.stdout, streamed.stdout, "{whole}");
    let reqs = mock.requests().await;
    assert_eq!(reqs[2]["body"]["stream"], false);
    assert!(whole.stderr.contains("[metrics] summary: "), "{whole}");
    assert!(
        whole.stderr.contains("[metrics] total: 2 model calls"),
        "{whole}"
    );
    // The memory saved by the first run is in the second run's prompt.
    assert!(prompt_text(&reqs[2]).contains("<memory>"));
}

#[tokio::test]
async fn raw_output_and_the_kubectl_line_are_shown_on_request() {
    let mock = MockProvider::start(&["--reply", "Two pods."]);
    let client = Client::with_pods();
    let extra =
        "display:\n  show_raw_output: true\n  show_kubectl: true\nmemory:\n  enabled: false\n";
    client.configure(&mock, true, extra);
    let out = client.run(&["get", "pods", "-n", "shop"]);
    out.assert_success();
    assert_eq!(
        out.stdout,
        format!("$ kubectl get pods -n shop\n{PODS}Two pods.\n")
    );
    assert_eq!(client.kubectl_runs(), ["get pods -n shop"]);
    assert_eq!(mock.requests().await.len(), 1, "memory is off: one call");
}

#[tokio::test]
async fn vibe_plans_runs_and_summarizes() {
    let plan = plan_json(&["get", "pods"], "list the pods");
    let mock = MockProvider::start(&["--reply", &plan]);
    // The marker makes the mock answer the summary call (which carries this output) differently.
    let client = Client::new(
        &format!("{PODS}[[mock:reply=Two pods are running.]]\n"),
        "",
        0,
    );
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let before = client.text();
    let out = client.run(&["vibe", "show pods", "--yes"]);
    out.assert_success();
    assert_eq!(
        out.stdout, "$ kubectl get pods\n  list the pods\nTwo pods are running.\n",
        "{out}"
    );
    assert_eq!(client.kubectl_runs(), ["get pods"]);
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 2);
    let format = &reqs[0]["body"]["response_format"];
    assert_eq!(format["type"], "json_schema", "{format}");
    assert_eq!(format["json_schema"]["schema"]["required"][0], "commands");
    assert!(prompt_text(&reqs[0]).contains("show pods"));
    assert!(reqs[1]["body"]["response_format"].is_null());
    assert_eq!(
        client.text(),
        before,
        "memory is off: the file is untouched"
    );
}

#[tokio::test]
async fn vibe_on_a_pipe_without_yes_refuses_to_run() {
    let plan = plan_json(&["delete", "pod", "web-1"], "remove it");
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::with_pods();
    client.configure(&mock, true, "");
    let out = client.fails(&["vibe", "delete web-1"]);
    assert!(out.stdout.contains("$ kubectl delete pod web-1"), "{out}");
    assert!(out.stderr.contains("hint: pass --yes"), "{out}");
    assert!(client.kubectl_runs().is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_plan_that_is_not_json_gets_one_retry_then_a_clear_error() {
    let mock = MockProvider::start(&["--reply", "Sure! You should run kubectl get pods."]);
    let client = Client::with_pods();
    client.configure(&mock, true, "");
    let out = client.fails(&["vibe", "show pods", "--yes"]);
    assert!(
        out.stderr
            .contains("error: the model did not answer with a valid plan, even after a retry"),
        "{out}"
    );
    assert!(out.stderr.contains("hint: "), "{out}");
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 2, "exactly one retry");
    assert!(prompt_text(&reqs[1]).contains("Sure! You should run kubectl get pods."));
    assert!(prompt_text(&reqs[1]).contains("could not be used"));
    assert!(client.kubectl_runs().is_empty());
}

#[tokio::test]
async fn a_missing_kubectl_is_named_by_its_key() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    client.configure(&mock, true, "");
    let text = client.text().replace(
        &client.kubectl().display().to_string(),
        "/nonexistent/kubectl",
    );
    client.write(&text);
    let out = client.fails(&["get", "pods"]);
    assert!(out.stderr.contains(key::CORE_KUBECTL_COMMAND), "{out}");
    assert!(out.stderr.contains("/nonexistent/kubectl"), "{out}");
    assert!(mock.requests().await.is_empty(), "no model call");

    // The env var overrides the file, and is named the same way.
    let mut client = Client::with_pods();
    client.configure(&mock, true, "");
    client.env = vec![(
        "VIBECTL_CORE_KUBECTL_COMMAND".into(),
        "/nope/kubectl".into(),
    )];
    let out = client.fails(&["just", "get", "pods"]);
    assert!(out.stderr.contains(key::CORE_KUBECTL_COMMAND), "{out}");
}

#[tokio::test]
async fn a_failing_kubectl_shows_its_stderr_and_exits_non_zero() {
    let mock = MockProvider::start(&[]);
    let client = Client::new(
        "",
        "Error from server (NotFound): pods \"nope\" not found\n",
        1,
    );
    // With the summary off there is no recovery call either (tests/client/recovery.rs has it).
    client.configure(&mock, true, "display:\n  show_vibe: false\n");
    let out = client.fails(&["get", "pods", "nope"]);
    assert!(
        out.stderr
            .contains("Error from server (NotFound): pods \"nope\" not found"),
        "{out}"
    );
    assert!(
        out.stderr.contains("`kubectl get pods nope` failed"),
        "{out}"
    );
    assert_eq!(out.stdout, "");
    assert!(
        mock.requests().await.is_empty(),
        "no model call with show_vibe off"
    );
    client.fails(&["just", "get", "pods", "nope"]);
}

#[tokio::test]
async fn just_runs_kubectl_without_the_model() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    client.configure(&mock, true, "");
    let before = client.text();
    let out = client.run(&["just", "get", "pods", "-o", "wide"]);
    out.assert_success();
    assert_eq!(out.stdout, PODS);
    assert_eq!(client.kubectl_runs(), ["get pods -o wide"]);
    assert!(mock.requests().await.is_empty());
    assert_eq!(client.text(), before);
}

#[tokio::test]
async fn a_missing_key_names_the_config_key_and_the_env_var() {
    let client = Client::with_pods();
    client.write(&format!(
        "core:\n  kubectl_command: {}\nllm:\n  model: openai/gpt-4.1\n",
        client.kubectl().display()
    ));
    let out = client.fails(&["vibe", "show pods", "--yes"]);
    assert!(out.stderr.contains(key::PROVIDERS_OPENAI_KEY), "{out}");
    assert!(out.stderr.contains("VIBECTL_OPENAI_API_KEY"), "{out}");
    assert!(client.kubectl_runs().is_empty());
}

#[tokio::test]
async fn an_unknown_proxy_profile_is_an_error_not_direct_mode() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    client.configure(&mock, true, "");
    let out = client.fails(&["--proxy", "nosuch", "get", "pods"]);
    assert!(out.stderr.contains("nosuch"), "{out}");
    assert!(client.kubectl_runs().is_empty());
    assert!(mock.requests().await.is_empty());
}

#[tokio::test]
async fn the_model_flag_and_custom_instructions_reach_the_request() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    let extra = crate::support::yaml::config(&[
        (key::SYSTEM_CUSTOM_INSTRUCTIONS, "Answer like a pirate."),
        (key::MEMORY_ENABLED, "false"),
    ]);
    client.configure(&mock, true, &extra);
    client
        .run(&["--model", "openai/gpt-4o-mini", "get", "pods"])
        .assert_success();
    let req = mock.last_request().await;
    assert_eq!(req["body"]["model"], "gpt-4o-mini");
    let system = &req["body"]["messages"][0];
    assert_eq!(system["role"], "system");
    assert!(
        system["content"]
            .as_str()
            .is_some_and(|c| c.contains("Answer like a pirate.")),
        "{system}"
    );
}

#[tokio::test]
async fn anthropic_models_plan_with_a_forced_tool_and_stream_the_summary() {
    let plan = plan_json(&["get", "pods"], "list the pods");
    let mock = MockProvider::start(&["--reply", &plan, "--api-key", super::API_KEY]);
    let client = Client::new(&format!("{PODS}[[mock:reply=Two pods.]]\n"), "", 0);
    client.write(&crate::support::yaml::config(&[
        (
            key::CORE_KUBECTL_COMMAND,
            client.kubectl().display().to_string(),
        ),
        (key::LLM_MODEL, "anthropic/claude-sonnet-4-0".to_owned()),
        (key::MEMORY_ENABLED, "false".to_owned()),
        (key::PROVIDERS_ANTHROPIC_KEY, super::API_KEY.to_owned()),
        (
            key::PROVIDERS_ANTHROPIC_BASE_URL,
            mock.base_url(ProviderKind::Anthropic),
        ),
    ]));
    let out = client.run(&["vibe", "show pods", "--yes"]);
    out.assert_success();
    assert_eq!(
        out.stdout,
        "$ kubectl get pods\n  list the pods\nTwo pods.\n"
    );
    assert_eq!(client.kubectl_runs(), ["get pods"]);
    let reqs = mock.requests().await;
    assert_eq!(reqs[0]["path"], "/v1/messages");
    assert_eq!(reqs[0]["body"]["model"], "claude-sonnet-4-0");
    assert!(reqs[0]["body"]["tools"][0]["input_schema"].is_object());
    assert_eq!(reqs[1]["body"]["stream"], true);
}

#[tokio::test]
async fn core_kubeconfig_is_passed_to_every_kubectl_run() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    client.configure(&mock, true, "");
    client.run(&["get", "pods"]).assert_success();
    let kubeconfig = client.path().join("team.kubeconfig");
    let path = kubeconfig.display().to_string();
    client
        .run(&["config", "set", key::CORE_KUBECONFIG, &path])
        .assert_success();
    client.run(&["get", "pods"]).assert_success();
    assert_eq!(
        client.kubectl_runs(),
        [
            "get pods".to_owned(),
            format!("--kubeconfig {} get pods", kubeconfig.display()),
        ],
        "without and then with {}",
        key::CORE_KUBECONFIG
    );
}

/// Each provider's key is read from its `key_file` (Ollama's from `key` too) and sent to its
/// `base_url`; the mock refuses any other key.
#[tokio::test]
async fn provider_keys_come_from_key_files_and_reach_each_base_url() {
    const FILE_KEY: &str = "sk-kept-in-a-file";
    let cases = [
        (
            "gpt-4o-mini",
            ProviderKind::OpenAi,
            key::PROVIDERS_OPENAI_KEY_FILE,
            key::PROVIDERS_OPENAI_BASE_URL,
        ),
        (
            "claude-sonnet-4-0",
            ProviderKind::Anthropic,
            key::PROVIDERS_ANTHROPIC_KEY_FILE,
            key::PROVIDERS_ANTHROPIC_BASE_URL,
        ),
        (
            "ollama/llama3.2",
            ProviderKind::Ollama,
            key::PROVIDERS_OLLAMA_KEY_FILE,
            key::PROVIDERS_OLLAMA_BASE_URL,
        ),
        (
            "ollama/llama3.2",
            ProviderKind::Ollama,
            key::PROVIDERS_OLLAMA_KEY,
            key::PROVIDERS_OLLAMA_BASE_URL,
        ),
    ];
    for (model, kind, key_key, url_key) in cases {
        let mock = MockProvider::start(&["--api-key", FILE_KEY]);
        let client = Client::with_pods();
        let file = client.path().join("provider.key");
        std::fs::write(&file, format!("{FILE_KEY}\n")).expect("write the key file");
        let key_value = if key_key.ends_with("_file") {
            format!("{:?}", file.display().to_string())
        } else {
            FILE_KEY.to_owned()
        };
        client.write(&crate::support::yaml::config(&[
            (
                key::CORE_KUBECTL_COMMAND,
                client.kubectl().display().to_string(),
            ),
            (key::LLM_MODEL, model.to_owned()),
            (key_key, key_value),
            (url_key, mock.base_url(kind)),
        ]));
        let out = client.run(&["get", "pods"]);
        assert!(out.status.success(), "{key_key} and {url_key}\n{out}");
        let sent = mock.last_request().await;
        let (header, want) = match kind {
            ProviderKind::Anthropic => ("x-api-key", FILE_KEY.to_owned()),
            _ => ("authorization", format!("Bearer {FILE_KEY}")),
        };
        assert_eq!(sent["headers"][header], want, "{key_key}: {sent}");
    }
}
