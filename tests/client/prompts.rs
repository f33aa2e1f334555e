//! The prompts that reach the model from real runs: each command's own summary focus, the
//! current time, the markup tags, and the planning prompt's examples and warning against
//! commands that never end; the same fragments direct and through our server.

use serde_json::Value;

use super::proxy::Server;
use super::{API_KEY, Client, PODS, plan_json};
use crate::support::mock::MockProvider;

/// The system message and the user messages of an OpenAI-style request.
fn parts(req: &Value) -> (String, String) {
    let msgs = req["body"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let text = |role: &str| {
        msgs.iter()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["content"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    (text("system"), text("user"))
}

/// Runs `logs web-1` and `vibe`, returns the system and user text of the three model calls
/// (logs summary, plan, planned command's summary).
async fn prompts_of_a_session(client: &Client, mock: &MockProvider) -> Vec<(String, String)> {
    let seen = mock.requests().await.len();
    client.run(&["logs", "web-1"]).assert_success();
    client
        .run(&["vibe", "are the pods healthy?", "--yes"])
        .assert_success();
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), seen + 3, "{reqs:?}");
    reqs[seen..].iter().map(parts).collect()
}

#[tokio::test]
async fn each_command_sends_its_own_prompt_direct_and_through_our_server() {
    let plan = plan_json(&["get", "pods"], "list the pods");
    let mock = MockProvider::start(&["--reply", &plan, "--api-key", API_KEY]);
    let mut client = Client::new(&format!("{PODS}[[mock:reply=Fine.]]\n"), "", 0);
    client.configure(&mock, false, "memory:\n  enabled: false\n");
    client.env = vec![("VIBECTL_OPENAI_API_KEY".into(), API_KEY.into())];
    let direct = prompts_of_a_session(&client, &mock).await;

    let (logs_system, logs_user) = &direct[0];
    assert!(
        logs_system.contains("Analyze these container logs."),
        "{logs_system}"
    );
    assert!(
        logs_system.contains("The current time is "),
        "{logs_system}"
    );
    assert!(logs_system.contains("[red]...[/red]"), "{logs_system}");
    assert!(
        logs_user.contains("The command: kubectl logs web-1"),
        "{logs_user}"
    );

    let (plan_system, plan_user) = &direct[1];
    assert!(plan_system.contains("Example 1:"), "{plan_system}");
    assert!(plan_system.contains("no `logs -f`"), "{plan_system}");
    assert!(plan_user.contains("are the pods healthy?"), "{plan_user}");

    let (summary_system, summary_user) = &direct[2];
    assert!(
        summary_system.contains("Summarize this list of Kubernetes resources."),
        "a planned `get` is summarized as a get: {summary_system}"
    );
    assert!(
        summary_user.contains("Focus the summary on that."),
        "{summary_user}"
    );

    client.env.clear();
    let server = Server::start(&mock);
    server.connect(&client);
    let proxied = prompts_of_a_session(&client, &mock).await;
    // The same fragments, but for the time line (its seconds may differ).
    let strip_time = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("The current time is "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (d, p) in direct.iter().zip(&proxied) {
        assert_eq!(strip_time(&d.0), strip_time(&p.0));
        assert_eq!(d.1, p.1);
    }
}

#[tokio::test]
async fn a_planned_watch_shows_its_output_as_it_comes_then_the_summary() {
    let plan = plan_json(&["get", "pods", "-w"], "The user asked to watch.");
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::new(&format!("{PODS}[[mock:reply=Fine.]]\n"), "", 0);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let out = client.run(&["vibe", "watch the pods", "--yes"]);
    out.assert_success();
    // Shown as kubectl printed it (raw output is off: only a followed run prints it).
    assert!(out.stdout.contains(PODS), "{out}");
    assert!(out.stdout.ends_with("Fine.\n"), "{out}");
    assert_eq!(client.kubectl_runs(), ["get pods -w"]);
}
