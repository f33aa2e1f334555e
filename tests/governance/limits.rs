//! The limits as a client meets them: RESOURCE_EXHAUSTED with `limit-type` and
//! `retry-after-ms`, per token subject; and `serve` refusing limit values out of range.

use std::time::Duration;

use futures_util::StreamExt;
use tonic::Code;
use vibectl::config::Secret;
use vibectl::config::generated::server::key;
use vibectl::proto::{StreamChunk, execute_response, stream_chunk::ChunkType};
use vibectl::server::auth;

use super::{config_text, held, limits, refusal, stuck};
use crate::support::mock::MockProvider;
use crate::support::process;
use crate::support::server::TestServer;
use crate::support::server::{LIMIT, authorized, request, within};
use crate::support::spawned::command;
use crate::support::wait;
use crate::support::yaml::entry;

/// Execute `n` quick calls; the successes and the refusals' (limit type, retry hint).
async fn burst(
    served: &TestServer,
    n: usize,
    auth: Option<&str>,
) -> (usize, Vec<(String, Option<u64>)>) {
    let mut client = served.client().await;
    let mut ok = 0;
    let mut refused = Vec::new();
    for i in 0..n {
        let req = authorized(request(&format!("call {i}"), None), auth);
        match within("Execute", client.execute(req)).await {
            Ok(resp) => match resp.into_inner().result.expect("a result") {
                execute_response::Result::Success(_) => ok += 1,
                execute_response::Result::Error(e) => panic!("call {i} failed: {e:?}"),
            },
            Err(status) => refused.push(refusal(&status)),
        }
    }
    (ok, refused)
}

#[tokio::test]
async fn rpm_lets_exactly_n_quick_calls_through_and_says_when_to_retry() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&config_text(
        &mock,
        "global:\n  max_requests_per_minute: 5",
        "",
    ))
    .await;
    let (ok, refused) = burst(&served, 7, None).await;
    assert_eq!(ok, 5, "refusals: {refused:?}");
    assert_eq!(refused.len(), 2);
    for (limit, retry) in refused {
        assert_eq!(limit, "rpm");
        let ms = retry.expect("retry-after-ms");
        // One slot comes back every 12 s.
        assert!(ms > 0 && ms <= 12_000, "retry-after-ms {ms}");
    }
    assert_eq!(
        mock.stats().await["requests_total"],
        5,
        "refused calls never go upstream"
    );
}

#[tokio::test]
async fn per_token_limits_key_on_the_verified_sub() {
    let mock = MockProvider::start(&[]);
    let secret = "governance-test-secret";
    let limits = limits(&[
        (
            key::SERVER_LIMITS_GLOBAL_MAX_REQUESTS_PER_MINUTE.to_owned(),
            "3",
        ),
        (
            entry(
                key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_REQUESTS_PER_MINUTE,
                "alice",
            ),
            "1",
        ),
    ]);
    let extra = format!("jwt:\n  enabled: true\n  secret_key: {secret}\n");
    let served = TestServer::from_text(&config_text(&mock, &limits, &extra)).await;
    let alice = bearer(secret, "alice");
    let bob = bearer(secret, "bob");
    let (ok, refused) = burst(&served, 2, Some(&alice)).await;
    assert_eq!((ok, refused.len()), (1, 1), "alice has her own limit of 1");
    let (ok, refused) = burst(&served, 4, Some(&bob)).await;
    assert_eq!((ok, refused.len()), (3, 1), "bob has the global limit of 3");
    // Without a token: UNAUTHENTICATED, before any limit.
    let mut client = served.client().await;
    let status = client
        .execute(request("no token", None))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let text = served.gov.metrics.encode();
    assert!(
        text.contains(r#"vibectl_rate_limited_total{sub="alice",limit_type="rpm"} 1"#),
        "{text}"
    );
}

/// `Bearer TOKEN` for a token of `sub` signed with `secret`.
fn bearer(secret: &str, sub: &str) -> String {
    let t = auth::mint(
        &Secret::new(secret),
        "vibectl-server",
        sub,
        Some(Duration::from_secs(600)),
    )
    .expect("mint");
    format!("Bearer {t}")
}

/// Each quota, concurrency and timeout limit of a `per_token` entry binds its subject only.
#[tokio::test]
async fn per_token_quotas_concurrency_and_timeout_bind_their_sub_only() {
    let mock = MockProvider::start(&[]);
    let secret = "governance-test-secret";
    let limits = limits(&[
        (
            entry(key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_TOKENS_PER_DAY, "dora"),
            "5",
        ),
        (
            entry(
                key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_TOKENS_PER_MONTH,
                "mona",
            ),
            "5",
        ),
        (
            entry(
                key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_COST_USD_PER_MONTH,
                "carl",
            ),
            "0.01",
        ),
        (
            entry(
                key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_CONCURRENT_REQUESTS,
                "cora",
            ),
            "1",
        ),
        (
            entry(
                key::SERVER_LIMITS_PER_TOKEN_SUB_REQUEST_TIMEOUT_SECONDS,
                "tim",
            ),
            "1",
        ),
    ]);
    let extra = format!("jwt:\n  enabled: true\n  secret_key: {secret}\n");
    let served = TestServer::from_text(&config_text(&mock, &limits, &extra)).await;
    let mut client = served.client().await;
    let call = |sub: &str, text: &str| authorized(request(text, None), Some(&bearer(secret, sub)));

    // Tokens per day and per month: one call spends the 5 tokens; frank has no quota.
    for sub in ["dora", "mona"] {
        client
            .execute(call(sub, "spend"))
            .await
            .expect("within the quota");
        let status = client
            .execute(call(sub, "more"))
            .await
            .expect_err("quota spent");
        assert_eq!(refusal(&status).0, "quota", "{sub}");
    }
    // Cost: 4000 input tokens at 3 USD per million are over 0.01 USD.
    let long = "word ".repeat(4000);
    client
        .execute(call("carl", &long))
        .await
        .expect("within the budget");
    let status = client
        .execute(call("carl", "more"))
        .await
        .expect_err("budget spent");
    assert_eq!(refusal(&status).0, "quota");
    for i in 0..3 {
        client
            .execute(call("frank", &long))
            .await
            .unwrap_or_else(|s| panic!("frank has no quota, call {i}: {s:?}"));
    }

    // Concurrency: cora's second stream waits for her first; frank's does not.
    let mut first = client
        .stream_execute(call("cora", &stuck()))
        .await
        .expect("admitted")
        .into_inner();
    assert!(matches!(next(&mut first).await, ChunkType::TextChunk(_)));
    let status = client
        .stream_execute(call("cora", &stuck()))
        .await
        .expect_err("cora's second stream");
    assert_eq!(refusal(&status).0, "concurrency");
    let mut franks = Vec::new();
    for _ in 0..2 {
        let mut s = client
            .stream_execute(call("frank", &stuck()))
            .await
            .expect("frank has no concurrency limit")
            .into_inner();
        assert!(matches!(next(&mut s).await, ChunkType::TextChunk(_)));
        franks.push(s);
    }
    drop((first, franks));

    // Timeout: tim's call to a provider that never answers is stopped (an answer at all shows
    // it); frank's waits for a provider that answers after tim's timeout (the delay is the
    // scenario, a provider slower than tim's limit, not a synchronisation).
    let resp = within("Execute", client.execute(call("tim", "[[mock:hang]] slow")))
        .await
        .expect("an in-band answer");
    match resp.into_inner().result {
        Some(execute_response::Result::Error(e)) => assert_eq!(e.error_code, "TIMEOUT", "{e:?}"),
        other => panic!("tim's call did not time out: {other:?}"),
    }
    let slow_call = "[[mock:delay_ms=2500]] slow";
    let resp = within("Execute", client.execute(call("frank", slow_call)))
        .await
        .expect("an in-band answer");
    assert!(
        matches!(
            resp.into_inner().result,
            Some(execute_response::Result::Success(_))
        ),
        "frank has no timeout"
    );
}

/// The next message of a stream, bounded.
async fn next(stream: &mut tonic::Streaming<StreamChunk>) -> ChunkType {
    within("a stream message", stream.message())
        .await
        .expect("a stream message")
        .expect("the stream ended early")
        .chunk_type
        .expect("a chunk type")
}

#[tokio::test]
async fn concurrency_holds_a_slot_per_stream_until_it_ends() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&config_text(
        &mock,
        "global:\n  max_concurrent_requests: 2",
        "",
    ))
    .await;
    let mut client = served.client().await;
    // Two streams in flight: one until the mock releases it, one until the client drops it.
    let mut streams = Vec::new();
    for text in [held(4), stuck()] {
        let mut s = client
            .stream_execute(request(&text, None))
            .await
            .expect("admitted")
            .into_inner();
        assert!(matches!(next(&mut s).await, ChunkType::TextChunk(_)));
        streams.push(s);
    }
    let status = client
        .stream_execute(request(&stuck(), None))
        .await
        .expect_err("a third stream is over the limit");
    let (limit, retry) = refusal(&status);
    assert_eq!(limit, "concurrency");
    assert!(retry.is_some_and(|ms| ms > 0));
    // The first stream runs to its end; its slot is free by the time the client sees the end.
    mock.release().await;
    let mut first = streams.remove(0);
    let mut last = None;
    while let Some(c) = within("the stream", first.message()).await.expect("stream") {
        last = c.chunk_type;
    }
    assert!(matches!(last, Some(ChunkType::FinalMetrics(_))), "{last:?}");
    let mut s = client
        .stream_execute(request("[[mock:chunks=1]] again", None))
        .await
        .expect("the slot of the finished stream is free")
        .into_inner();
    while within("the stream", s.next()).await.is_some() {}
    // A dropped stream frees its slot too.
    drop(streams);
    wait::until(
        "the dropped stream's slot freed",
        LIMIT,
        async || match served.gov.limiter.in_flight("anonymous") {
            0 => Ok(()),
            n => Err(format!("{n} in flight")),
        },
    )
    .await;
    let text = served.gov.metrics.encode();
    assert!(
        text.contains(r#"vibectl_concurrent_in_flight{sub="anonymous"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn over_long_input_is_refused_before_the_provider() {
    let mock = MockProvider::start(&[]);
    let served =
        TestServer::from_text(&config_text(&mock, "global:\n  max_input_length: 60", "")).await;
    let mut client = served.client().await;
    // "You are a test." (15) + 50 = 65 characters over both fragments.
    let status = client
        .execute(request(&"é".repeat(50), None))
        .await
        .expect_err("65 characters of 60");
    assert_eq!(refusal(&status), ("input".to_owned(), None));
    let status = client
        .stream_execute(request(&"x".repeat(50), None))
        .await
        .expect_err("the stream too");
    assert_eq!(refusal(&status).0, "input");
    assert_eq!(mock.stats().await["requests_total"], 0);
    // 15 + 45 = 60 is allowed (characters, not bytes).
    let resp = client
        .execute(request(&"é".repeat(45), None))
        .await
        .expect("at the limit");
    assert!(matches!(
        resp.into_inner().result,
        Some(execute_response::Result::Success(_))
    ));
}

#[tokio::test]
async fn a_timed_out_stream_ends_with_timeout_and_cancels_the_upstream_call() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&config_text(
        &mock,
        "global:\n  request_timeout_seconds: 1",
        "",
    ))
    .await;
    let mut client = served.client().await;
    let stream = client
        .stream_execute(request(&stuck(), None))
        .await
        .expect("admitted")
        .into_inner();
    let chunks = crate::server::collect_chunks(stream).await;
    match chunks.last() {
        Some(ChunkType::Error(e)) => assert_eq!(e.error_code, "TIMEOUT", "{e:?}"),
        other => panic!("the stream did not end with a timeout: {other:?}"),
    }
    // The upstream stream was cut, not run to its end: the proof that the timeout did not wait.
    mock.wait_for_stat("streams_cancelled", 1, LIMIT).await;
    assert_eq!(mock.stats().await["streams_completed"], 0);
    let text = served.gov.metrics.encode();
    assert!(text.contains(r#"kind="timeout"} 1"#), "{text}");
}

/// `serve` on a config with `limits` must fail naming `key`.
fn serve_refuses(limits: &str, key: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    let limits: String = limits.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(&file, format!("server:\n  port: 0\n  limits:\n{limits}")).expect("write");
    let out = process::run(&mut command(dir.path(), &["serve"]), LIMIT);
    let stderr = out.stderr;
    assert!(!out.status.success(), "serve accepted {limits:?}");
    assert!(
        stderr.contains(key),
        "the error does not name {key}: {stderr}"
    );
}

#[test]
fn serve_refuses_limits_out_of_range_naming_the_key() {
    serve_refuses(
        "global:\n  max_requests_per_minute: 0",
        "server.limits.global.max_requests_per_minute",
    );
    serve_refuses(
        "global:\n  max_concurrent_requests: -3",
        "server.limits.global.max_concurrent_requests",
    );
    serve_refuses(
        "global:\n  request_timeout_seconds: 99999999",
        "server.limits.global.request_timeout_seconds",
    );
    serve_refuses(
        "per_token:\n  alice:\n    max_input_length: 0",
        "server.limits.per_token.alice.max_input_length",
    );
    serve_refuses(
        "per_token:\n  alice:\n    max_rpm: 5",
        "server.limits.per_token.alice.max_rpm",
    );
    serve_refuses(
        "global:\n  max_cost_usd_per_month: 0",
        "server.limits.global.max_cost_usd_per_month",
    );
}

#[tokio::test]
async fn a_timed_out_execute_answers_timeout_without_waiting_for_the_provider() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&config_text(
        &mock,
        "global:\n  request_timeout_seconds: 1",
        "",
    ))
    .await;
    let mut client = served.client().await;
    // The mock never answers this one: an answer at all shows the server did not wait for it.
    let resp = within(
        "Execute",
        client.execute(request("[[mock:hang]] slow", None)),
    )
    .await
    .expect("an in-band answer");
    match resp.into_inner().result {
        Some(execute_response::Result::Error(e)) => assert_eq!(e.error_code, "TIMEOUT", "{e:?}"),
        other => panic!("not a timeout: {other:?}"),
    }
    assert!(served.gov.metrics.encode().contains(r#"kind="timeout"} 1"#));
}
