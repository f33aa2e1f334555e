//! `memory show|set|clear|update` and the memory in prompts: the file is edited through the
//! config engine, so its comments survive.

use vibectl::config::generated::client::key;

use super::{Client, plan_json};
use crate::support::mock::MockProvider;

const ORIGINAL: &str = "# my vibectl settings\n\
                        display:\n  show_vibe: true   # keep the summaries\n\
                        \n\
                        # memory below\n\
                        memory:\n  max_chars: 40\n";

#[test]
fn set_show_clear_round_trip_keeps_the_comments() {
    let client = Client::with_pods();
    client.write(ORIGINAL);
    assert_eq!(client.run(&["memory", "show"]).assert_success().stdout, "");

    let out = client.run(&["memory", "set", "the app runs in namespace shop"]);
    out.assert_success();
    let text = client.text();
    assert!(
        text.starts_with(ORIGINAL.trim_end()),
        "comments kept:\n{text}"
    );
    assert!(text.contains("the app runs in namespace shop"), "{text}");

    let out = client.run(&["memory", "show"]);
    assert_eq!(
        out.assert_success().stdout,
        "the app runs in namespace shop\n"
    );

    client.run(&["memory", "clear"]).assert_success();
    assert_eq!(client.text(), ORIGINAL, "clear restores the file");
    assert_eq!(client.run(&["memory", "show"]).assert_success().stdout, "");
    // Clearing an empty memory is fine and changes nothing.
    client.run(&["memory", "clear"]).assert_success();
    assert_eq!(client.text(), ORIGINAL);
}

#[test]
fn set_cuts_the_memory_to_max_chars() {
    let client = Client::with_pods();
    client.write(ORIGINAL);
    let long = "x".repeat(100);
    let out = client.run(&["memory", "set", &long]);
    out.assert_success();
    assert!(
        out.stderr.contains("cut to 40 characters"),
        "{} is 40 in ORIGINAL: {out}",
        key::MEMORY_MAX_CHARS
    );
    let shown = client.run(&["memory", "show"]);
    assert_eq!(
        shown.assert_success().stdout,
        format!("{}\n", "x".repeat(40))
    );
}

#[tokio::test]
async fn update_asks_the_model_and_saves_its_answer() {
    let mock = MockProvider::start(&["--reply", "app in shop; db in data"]);
    let client = Client::with_pods();
    client.configure(&mock, true, "memory_content: app in shop\n");
    let out = client.run(&["memory", "update", "the db moved to namespace data"]);
    out.assert_success();
    assert_eq!(out.stdout, "app in shop; db in data\n");
    assert!(client.text().contains(super::COMMENT));
    assert_eq!(
        client.run(&["memory", "show"]).assert_success().stdout,
        "app in shop; db in data\n"
    );
    let req = mock.last_request().await;
    let body = req["body"].to_string();
    assert!(body.contains("the db moved to namespace data"), "{body}");
    assert!(body.contains("app in shop"), "{body}");
}

#[tokio::test]
async fn vibe_without_a_request_continues_from_the_memory() {
    let plan = plan_json(&["get", "pods", "-n", "shop"], "check the shop pods");
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::with_pods();
    client.configure(&mock, true, "");
    let out = client.fails(&["vibe", "--yes"]);
    assert!(out.stderr.contains("no memory to continue from"), "{out}");
    assert!(mock.requests().await.is_empty());

    client
        .run(&["memory", "set", "goal: find why shop pods restart"])
        .assert_success();
    let out = client.run(&["vibe", "--yes"]);
    out.assert_success();
    assert!(
        out.stdout.starts_with("$ kubectl get pods -n shop\n"),
        "{out}"
    );
    assert_eq!(client.kubectl_runs(), ["get pods -n shop"]);
    let first = &mock.requests().await[0];
    assert!(
        first["body"]
            .to_string()
            .contains("goal: find why shop pods restart")
    );
}

#[tokio::test]
async fn disabled_memory_stays_out_of_prompts_and_the_file() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    client.configure(
        &mock,
        true,
        "memory:\n  enabled: false\nmemory_content: secret plans\n",
    );
    let before = client.text();
    client.run(&["get", "pods"]).assert_success();
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 1, "no memory update call");
    assert!(!reqs[0]["body"].to_string().contains("secret plans"));
    assert_eq!(client.text(), before);
}
