//! A hostile upstream (the mock's hostile overrides) cannot hold a call or the server's memory:
//! a provider that never answers is cut at its own timeout even beside a slow provider, retries
//! stop at the call's deadline, a trickling body at the attempt or stream deadline, a silent
//! stream at its idle limit, a huge body and an endless stream line at their caps, and events
//! after the end marker at the drain budget; an absurd `retry-after` is clamped, an echoed API
//! key is not passed on, and a model that does not stream answers a stream in one chunk. After
//! each, the server still serves a well-behaved call.
//!
//! Each test asserts how the call ended (its error code), never how long it took; `within`
//! only keeps a test from hanging when a bound does not hold.

use tonic::transport::Channel;
use vibectl::config::ServerConfig;
use vibectl::config::generated::server::{ModelEntry, ProviderEntry, key};
use vibectl::proto::stream_chunk::ChunkType;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::proto::{ExecuteError, execute_response};

use crate::support::mock::MockProvider;
use crate::support::process;
use crate::support::server::{
    API_KEY, LIMIT, MODEL, PROVIDER, TestServer, assert_still_serves, config, execute, request,
    within,
};

/// A second provider entry with a long timeout, so the shared pool's longest timeout is long.
const SLOW_PROVIDER: &str = "slow";
/// A model of the mock provider with `supports_streaming: false`.
const WHOLE_MODEL: &str = "whole-model";
/// The ceiling on the peak RSS of the process running the server, in kB.
const RSS_CEILING_KB: u64 = 256 * 1024;

/// The test config with tight bounds on the mock provider: 1 s per attempt, `retries` retries,
/// a call deadline of 2.5 s, 1 s of stream silence and 3 s per stream.
fn tight(mock: &MockProvider, retries: i64) -> ServerConfig {
    let mut cfg = config(mock);
    let entry = cfg.providers.get_mut(PROVIDER).expect("the mock entry");
    entry.timeout_seconds = 1.0;
    entry.max_retries = retries;
    entry.deadline_seconds = Some(2.5);
    entry.stream_idle_seconds = 1.0;
    entry.stream_max_seconds = 3.0;
    let slow = ProviderEntry {
        timeout_seconds: 600.0,
        stream_idle_seconds: 600.0,
        ..entry.clone()
    };
    cfg.providers.insert(SLOW_PROVIDER.to_owned(), slow);
    cfg.models.insert(
        WHOLE_MODEL.to_owned(),
        ModelEntry {
            provider: Some(PROVIDER.to_owned()),
            supports_streaming: false,
            ..ModelEntry::default()
        },
    );
    cfg
}

async fn serve(mock: &MockProvider, retries: i64) -> (TestServer, VibectlLlmProxyClient<Channel>) {
    let server = TestServer::start(tight(mock, retries)).await;
    let client = server.client().await;
    (server, client)
}

/// Execute `prompt`; the error it must end with.
async fn execute_error(client: &mut VibectlLlmProxyClient<Channel>, prompt: &str) -> ExecuteError {
    match execute(client, request(prompt, None)).await.1 {
        execute_response::Result::Error(e) => e,
        execute_response::Result::Success(s) => panic!("{prompt}: succeeded: {s:?}"),
    }
}

/// Stream `prompt` for `model` to its end; every chunk type, in order.
async fn stream_all(
    client: &mut VibectlLlmProxyClient<Channel>,
    prompt: &str,
    model: Option<&str>,
) -> Vec<ChunkType> {
    let mut stream = within(
        "StreamExecute",
        client.stream_execute(request(prompt, model)),
    )
    .await
    .expect("admitted")
    .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = within("the next chunk", stream.message())
        .await
        .expect("no gRPC error")
    {
        out.extend(chunk.chunk_type);
    }
    out
}

/// The error chunk that must end `chunks`.
fn stream_error(chunks: &[ChunkType]) -> &ExecuteError {
    match chunks.last() {
        Some(ChunkType::Error(e)) => e,
        other => panic!("the stream did not end with an error: {other:?} ({chunks:?})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_times_out_by_its_own_timeout() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 0).await;
    let e = execute_error(&mut client, "[[mock:hang]] hello").await;
    assert_eq!(e.error_code, "TIMEOUT", "{e:?}");
    assert_still_serves(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_call_deadline() {
    let mock = MockProvider::start(&[]);
    // Ten retries of one second each, and exponential waits between them, would outlast
    // `within`'s limit; the 2.5 s deadline ends the call first.
    let (_server, mut client) = serve(&mock, 10).await;
    let e = execute_error(&mut client, "[[mock:hang]] hello").await;
    let deadline = key::PROVIDERS_PROVIDER_DEADLINE_SECONDS;
    assert_eq!(
        e.error_code, "TIMEOUT",
        "{deadline} did not end the call: {e:?}"
    );
    assert_still_serves(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_whole_body_is_cut_at_the_attempt_timeout() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 0).await;
    let e = execute_error(&mut client, "[[mock:trickle_ms=20]] hello").await;
    assert_eq!(e.error_code, "TIMEOUT", "{e:?}");
    assert_still_serves(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_stream_is_cut_at_its_total_deadline() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 0).await;
    let chunks = stream_all(&mut client, "[[mock:trickle_ms=20]] hello", None).await;
    let total = key::PROVIDERS_PROVIDER_STREAM_MAX_SECONDS;
    let e = stream_error(&chunks);
    assert_eq!(
        e.error_code, "TIMEOUT",
        "{total} did not end the stream: {chunks:?}"
    );
    assert_still_serves(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_cut_at_its_idle_limit() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 0).await;
    let chunks = stream_all(&mut client, "[[mock:chunks=5,hold_after=2]] hello", None).await;
    let idle = key::PROVIDERS_PROVIDER_STREAM_IDLE_SECONDS;
    let e = stream_error(&chunks);
    assert_eq!(
        e.error_code, "TIMEOUT",
        "{idle} did not end the stream: {chunks:?}"
    );
    let texts = chunks
        .iter()
        .filter(|c| matches!(c, ChunkType::TextChunk(_)))
        .count();
    assert_eq!(texts, 2, "{chunks:?}");
    assert_still_serves(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_after_the_end_marker_do_not_hold_the_stream() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 0).await;
    let chunks = stream_all(&mut client, "[[mock:after_done_ms=5]] hello", None).await;
    assert!(
        matches!(chunks.last(), Some(ChunkType::FinalMetrics(_))),
        "{chunks:?}"
    );
    assert_still_serves(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_is_clamped() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 2).await;
    let e = execute_error(
        &mut client,
        "[[mock:status=429,retry_after_raw=1e20]] hello",
    )
    .await;
    assert_eq!(e.error_code, "PROVIDER_RATE_LIMITED", "{e:?}");
    let details: serde_json::Value =
        serde_json::from_str(e.error_details.as_deref().expect("details")).expect("JSON");
    let ceiling = vibectl::llm::error::RETRY_AFTER_CEILING.as_millis() as u64;
    assert_eq!(details["retry_after_ms"], ceiling, "{details}");
    assert_still_serves(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_api_key_is_not_passed_on() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 0).await;
    let e = execute_error(&mut client, "[[mock:status=401,echo_auth]] hello").await;
    assert_eq!(e.error_code, "PROVIDER_AUTH_FAILED", "{e:?}");
    // Clients get what failed, never the provider's text (which echoed the header here).
    assert!(!format!("{e:?}").contains(API_KEY), "{e:?}");
    assert!(!e.error_message.contains("authorization"), "{e:?}");
    assert_still_serves(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_does_not_stream_answers_a_stream_in_one_chunk() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 0).await;
    let chunks = stream_all(&mut client, "[[mock:chunks=5]] hello", Some(WHOLE_MODEL)).await;
    let texts: Vec<&String> = chunks
        .iter()
        .filter_map(|c| match c {
            ChunkType::TextChunk(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["Hello from the mock provider."], "{chunks:?}");
    assert!(
        matches!(chunks.last(), Some(ChunkType::FinalMetrics(_))),
        "{chunks:?}"
    );
    let sent = mock.last_request().await;
    assert_ne!(
        sent["body"]["stream"], true,
        "asked upstream for a stream: {sent}"
    );
    assert_still_serves(&mut client).await;
}

/// Runs [`huge_answers_in_this_process`] in a process of its own, so its peak RSS is the
/// server's alone.
#[test]
fn a_huge_body_and_an_endless_line_fail_within_a_memory_ceiling() {
    let exe = std::env::current_exe().expect("the test binary");
    let out = process::run(
        std::process::Command::new(exe).args([
            "--exact",
            "hostile::upstream::huge_answers_in_this_process",
            "--ignored",
            "--nocapture",
        ]),
        LIMIT * 4,
    );
    out.assert_success();
    assert!(out.stdout.contains("1 passed"), "{out}");
}

/// A 300 MiB whole answer and an endless stream line fail with a bad response, the peak RSS of
/// this process (which runs the server) stays under [`RSS_CEILING_KB`], and the server still
/// serves. Run by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a process of its own by a_huge_body_and_an_endless_line_fail_within_a_memory_ceiling"]
async fn huge_answers_in_this_process() {
    let mock = MockProvider::start(&[]);
    let (_server, mut client) = serve(&mock, 0).await;
    let e = execute_error(&mut client, "[[mock:huge_mb=300]] hello").await;
    // Which bound was hit ("larger than", "longer than") is in the server log only.
    assert_eq!(e.error_code, "BAD_PROVIDER_RESPONSE", "{e:?}");
    let chunks = stream_all(&mut client, "[[mock:endless_line]] hello", Some(MODEL)).await;
    let e = stream_error(&chunks);
    assert_eq!(e.error_code, "BAD_PROVIDER_RESPONSE", "{e:?}");
    let peak = peak_rss_kb();
    println!("peak RSS {peak} kB");
    assert!(
        peak < RSS_CEILING_KB,
        "peak RSS {peak} kB is over the {RSS_CEILING_KB} kB ceiling"
    );
    assert_still_serves(&mut client).await;
}

/// `VmHWM` of this process, in kB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}
