//! After kubectl fails, vibectl asks the model how to recover, prints the suggestion and folds
//! it into the memory (as 0.11.6 does), then exits 1 with kubectl's error; when the model is
//! down, kubectl's output is still printed, with a warning. Direct and through our server.

use serde_json::Value;
use vibectl::config::generated::client::key;

use super::proxy::Server;
use super::{API_KEY, Client, PODS};
use crate::support::mock::MockProvider;
use crate::support::yaml;

const NOT_FOUND: &str = "Error from server (NotFound): pods \"web-3\" not found";
const SUGGESTION: &str = "Pod [bold]web-3[/bold] does not exist: [red]check the name[/red].";

fn all_text(req: &Value) -> String {
    req["body"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The model answers every call with [`SUGGESTION`]: the marker rides in kubectl's stderr, which
/// the recovery prompt (and then the memory prompt) carries.
fn failing_client(mock: &MockProvider) -> Client {
    let client = Client::new(
        "",
        &format!("{NOT_FOUND}\n[[mock:reply={SUGGESTION}]]\n"),
        1,
    );
    client.configure(mock, false, "");
    client
}

async fn check_recovery(client: &Client, mock: &MockProvider, seen_before: usize) {
    client.run(&["memory", "clear"]).assert_success();
    let before = client.text();
    let out = client.run(&["get", "pod", "web-3"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(NOT_FOUND),
        "kubectl's error is shown\n{out}"
    );
    assert!(
        out.stderr
            .contains("error: `kubectl get pod web-3` failed with exit status 1"),
        "{out}"
    );
    assert_eq!(
        out.stdout, "Pod web-3 does not exist: check the name.\n",
        "the suggestion, its markup removed off a terminal\n{out}"
    );
    let reqs = mock.requests().await;
    let reqs = &reqs[seen_before..];
    assert_eq!(reqs.len(), 2, "recovery, then the memory update: {reqs:?}");
    let recovery = all_text(&reqs[0]);
    assert!(
        recovery.contains("A kubectl command failed.")
            && recovery.contains("The command that failed: kubectl get pod web-3")
            && recovery.contains(NOT_FOUND),
        "{recovery}"
    );
    let memory = all_text(&reqs[1]);
    assert!(
        memory.contains("It failed: ") && memory.contains("Suggested next: "),
        "{memory}"
    );
    let after = client.text();
    assert_ne!(after, before);
    assert!(
        after.contains("check the name"),
        "the memory holds the outcome:\n{after}"
    );
}

#[tokio::test]
async fn a_kubectl_failure_gets_a_recovery_suggestion_kept_in_memory() {
    let mock = MockProvider::start(&["--api-key", API_KEY]);
    let mut client = failing_client(&mock);
    client.env = vec![("VIBECTL_OPENAI_API_KEY".into(), API_KEY.into())];
    check_recovery(&client, &mock, 0).await;

    client.env.clear();
    let server = Server::start(&mock);
    server.connect(&client);
    check_recovery(&client, &mock, 2).await;
}

#[tokio::test]
async fn a_planned_command_that_fails_sends_its_explanation_to_recovery() {
    let plan = super::plan_json(&["get", "pod", "web-3"], "The user named web-3.");
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::new("", &format!("{NOT_FOUND}\n[[mock:reply=Try web-2.]]\n"), 1);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let out = client.run(&["vibe", "show web-3", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stdout.ends_with("Try web-2.\n"), "{out}");
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 2, "the plan, then the recovery");
    assert!(
        all_text(&reqs[1]).contains("Why it was planned: The user named web-3."),
        "{}",
        all_text(&reqs[1])
    );
}

/// A config whose model endpoint is a closed port: the provider is down.
fn down_client(extra: &str) -> Client {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    client.configure(&mock, true, extra);
    drop(mock);
    client
}

#[test]
fn when_the_model_is_down_kubectls_output_is_printed_with_a_warning() {
    let mut client = down_client(&yaml::config(&[(key::MEMORY_ENABLED, "false")]));
    client.env = vec![("VIBECTL_LLM_MAX_RETRIES".into(), "0".into())];
    let before = client.text();
    let out = client.run(&["get", "pods"]);
    assert_eq!(out.status.code(), Some(1), "as 0.11.6 exits\n{out}");
    assert_eq!(out.stdout, PODS, "kubectl's output, once\n{out}");
    assert!(
        out.stderr
            .contains("warning: the model could not summarize the output"),
        "{out}"
    );
    assert!(out.stderr.contains("error: "), "the model's error\n{out}");
    assert_eq!(client.text(), before);

    // Already shown raw: not printed twice.
    let out = client.run(&["--show-raw-output", "get", "pods"]);
    assert_eq!(out.stdout, PODS, "{out}");

    // A failed kubectl with the model down: kubectl's error, a warning, kubectl's exit error.
    let mut failing = Client::new("", &format!("{NOT_FOUND}\n"), 1);
    failing.env = client.env.clone();
    failing.write(&client.text().replace(
        &client.kubectl().display().to_string(),
        &failing.kubectl().display().to_string(),
    ));
    let out = failing.run(&["get", "pod", "web-3"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains(NOT_FOUND), "{out}");
    assert!(
        out.stderr
            .contains("warning: no recovery suggestion: the model call failed"),
        "{out}"
    );
    assert!(
        out.stderr.contains("`kubectl get pod web-3` failed"),
        "{out}"
    );
}

#[test]
fn when_our_server_is_up_but_its_provider_is_down_the_output_is_still_printed() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    client.configure(&mock, false, "memory:\n  enabled: false\n");
    let server = Server::start(&mock);
    server.connect(&client);
    let before = client.text();
    drop(mock);
    let out = client.run(&["get", "pods"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert_eq!(out.stdout, PODS, "{out}");
    assert!(
        out.stderr
            .contains("warning: the model could not summarize the output"),
        "{out}"
    );
    assert_eq!(client.text(), before);
}
