//! `examples/loadgen`, the load generator of scripts/bench-proxy and scripts/bench-http: with
//! `--rpc stream` it reports the time to the first piece of answer text (`first_chunk`), over
//! HTTP straight to the mock, through vibectl-server's HTTP API, and over gRPC; a stream event
//! without text (the role-only chunk that opens an OpenAI stream) does not count.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use vibectl::llm::ProviderKind;

use crate::support::mock::{MockProvider, example_binary};
use crate::support::process;
use crate::support::spawned::Spawned;

/// Longest one loadgen run of a few calls may take (it starts, connects and calls).
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Calls per run.
const CALLS: u64 = 4;

fn loadgen() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example_binary("loadgen"))
}

/// One closed-loop run of [`CALLS`] calls at concurrency 1 with `args`; its JSON line.
fn run(args: &[&str]) -> Value {
    let calls = CALLS.to_string();
    let out = process::run(
        Command::new(loadgen())
            .args(["--concurrency", "1", "--warmup", "0", "--duration", "50"])
            .args(["--requests", &calls])
            .args(args),
        RUN_LIMIT,
    );
    out.assert_success();
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("loadgen printed no JSON line ({e}): {}", out.stdout))
}

/// Every call succeeded and every one timed its first answer text, no later than its end.
fn assert_first_chunk_of_every_call(v: &Value) {
    assert_eq!(v["count"], CALLS, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["first_chunk"]["count"], CALLS, "{v}");
    let (first, whole) = (&v["first_chunk"]["max_us"], &v["max_us"]);
    assert!(
        first.as_u64().is_some_and(|f| f >= 1) && first.as_u64() <= whole.as_u64(),
        "the first text comes within its call: {v}"
    );
}

#[test]
fn an_http_stream_reports_the_time_to_its_first_answer_text() {
    let mock = MockProvider::start(&["--chunks", "3"]);
    let v = run(&["--direct-openai", &mock.url(), "--rpc", "stream"]);
    assert_first_chunk_of_every_call(&v);
}

#[test]
fn a_stream_without_answer_text_has_no_first_chunk() {
    // An empty reply: the stream is the role-only opening chunk, the stop chunk and [DONE].
    let mock = MockProvider::start(&["--reply", ""]);
    let v = run(&["--direct-openai", &mock.url(), "--rpc", "stream"]);
    assert_eq!(v["count"], CALLS, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["first_chunk"]["count"], 0, "{v}");
}

#[test]
fn a_whole_answer_reports_no_first_chunk() {
    let mock = MockProvider::start(&[]);
    let v = run(&["--direct-openai", &mock.url()]);
    assert_eq!(v["count"], CALLS, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert!(v.get("first_chunk").is_none(), "{v}");
}

#[test]
fn streams_through_vibectl_server_over_http_and_grpc_report_their_first_answer_text() {
    let mock = MockProvider::start(&["--chunks", "3"]);
    let text = format!(
        "server:\n  default_model: m1\n\
         providers:\n  up:\n    kind: openai\n    base_url: {}\n    key: k\n\
         models:\n  m1:\n    provider: up\n",
        mock.base_url(ProviderKind::OpenAi)
    );
    let server = Spawned::start(&text, &[]);
    let url = format!("http://{}", server.addr);
    let http = run(&["--direct-openai", &url, "--model", "m1", "--rpc", "stream"]);
    assert_first_chunk_of_every_call(&http);
    let grpc = run(&["--target", &url, "--rpc", "stream"]);
    assert_first_chunk_of_every_call(&grpc);
}
