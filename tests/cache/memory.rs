//! The in-memory cache: a repeated request answered without an upstream call and charged no
//! tokens, per subject unless the model is shareable, expired by its TTL, bounded in bytes
//! (least recently used dropped first, large answers not kept), failures not stored, and hits
//! still counted by the request rate limit.

use serde_json::json;
use tonic::Code;
use vibectl::config::generated::server::key;
use vibectl::proto::execute_response;

use super::{asking, chat, grpc_result, grpc_text, http_text, lookups, on, serve, upstream_calls};
use crate::governance::refusal;
use crate::http::token;
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, MODEL, PROVIDER, request, within};
use crate::support::wait;
use crate::support::yaml::entry;

#[tokio::test]
async fn a_repeated_request_is_answered_without_an_upstream_call_and_charged_nothing() {
    let mock = MockProvider::start(&[]);
    let served = serve(&mock, false, &on(300)).await;
    let mut client = served.server.client().await;
    let first = grpc_text(&mut client, request("explain the pods", None), &[]).await;
    assert_eq!(upstream_calls(&mock).await, 1);
    let again = grpc_result(&mut client, request("explain the pods", None), &[]).await;
    let execute_response::Result::Success(hit) = again else {
        panic!("the repeat failed: {again:?}");
    };
    assert_eq!(hit.response_text, first);
    assert_eq!(hit.actual_model_used, MODEL);
    let m = hit.metrics.expect("metrics");
    assert_eq!((m.input_tokens, m.output_tokens), (Some(0), Some(0)));
    assert_eq!(
        upstream_calls(&mock).await,
        1,
        "the hit made no upstream call"
    );
    // Another request is not a hit.
    grpc_text(&mut client, request("explain the nodes", None), &[]).await;
    assert_eq!(upstream_calls(&mock).await, 2);

    let records = served.usage();
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(records[0]["input_tokens"].as_u64().unwrap_or(0) > 0);
    assert!(records[0].get("cache").is_none(), "{records:?}");
    assert_eq!(records[1]["cache"], "hit", "{records:?}");
    assert_eq!(records[1]["status"], "completed");
    assert_eq!(
        (&records[1]["input_tokens"], &records[1]["output_tokens"]),
        (&json!(0), &json!(0))
    );
    let text = served.gov.metrics.encode();
    // The hit made no provider call, so only the two misses are timed upstream.
    let timed = format!(
        r#"vibectl_upstream_duration_seconds_count{{provider="{PROVIDER}",model="{MODEL}"}} 2"#
    );
    for sample in [lookups("hit", 1), lookups("miss", 2), timed] {
        assert!(text.lines().any(|l| l == sample), "no {sample}:\n{text}");
    }
}

#[tokio::test]
async fn the_cache_is_off_unless_the_model_turns_it_on() {
    let mock = MockProvider::start(&[]);
    let ttl_only = [(
        entry(key::MODELS_ID_CACHE_TTL_SECONDS, MODEL),
        "300".to_owned(),
    )];
    let served = serve(&mock, false, &ttl_only).await;
    let mut client = served.server.client().await;
    for _ in 0..2 {
        grpc_text(&mut client, request("explain the pods", None), &[]).await;
    }
    assert_eq!(upstream_calls(&mock).await, 2);
    assert!(served.gov.cache.is_empty());
    assert!(
        !served
            .gov
            .metrics
            .encode()
            .contains("vibectl_cache_lookups_total{")
    );
}

#[tokio::test]
async fn each_subject_has_answers_of_its_own_unless_the_model_is_shareable() {
    let mock = MockProvider::start(&[]);
    let (alice, bob) = (token("alice"), token("bob"));
    let body = chat("describe the deployment");
    let own = serve(&mock, true, &on(300)).await;
    for (who, calls) in [(&alice, 1), (&alice, 1), (&bob, 2), (&bob, 2)] {
        http_text(&own, Some(who), &[], &body).await;
        assert_eq!(upstream_calls(&mock).await, calls);
    }

    let mut shared = on(300);
    shared.push((
        entry(key::MODELS_ID_CACHE_SHAREABLE, MODEL),
        "true".to_owned(),
    ));
    let shared = serve(&mock, true, &shared).await;
    for who in [&alice, &bob, &alice] {
        http_text(&shared, Some(who), &[], &body).await;
        assert_eq!(upstream_calls(&mock).await, 3, "one call for both subjects");
    }
}

#[tokio::test]
async fn an_answer_expires_after_its_ttl() {
    let mock = MockProvider::start(&[]);
    let served = serve(&mock, false, &on(2)).await;
    let mut client = served.server.client().await;
    grpc_text(&mut client, request("list the services", None), &[]).await;
    grpc_text(&mut client, request("list the services", None), &[]).await;
    assert_eq!(upstream_calls(&mock).await, 1, "a hit within the TTL");
    // Asked again and again, the answer is a hit until it expires; then the call goes upstream.
    wait::until("the cached answer to expire", LIMIT, async || {
        grpc_text(&mut client, request("list the services", None), &[]).await;
        match upstream_calls(&mock).await {
            2 => Ok(()),
            n => Err(format!("{n} upstream calls")),
        }
    })
    .await;
    // The fresh answer is stored in turn.
    grpc_text(&mut client, request("list the services", None), &[]).await;
    assert_eq!(upstream_calls(&mock).await, 2);
}

#[tokio::test]
async fn the_byte_bounds_drop_the_least_recently_used_and_skip_large_answers() {
    let mock = MockProvider::start(&[]);
    let mut pairs = on(300);
    // An answer of 300 characters takes about 450 bytes with its overhead: two fit, three do not.
    pairs.push((key::SERVER_CACHE_MAX_BYTES.to_owned(), "1024".to_owned()));
    pairs.push((
        key::SERVER_CACHE_MAX_ENTRY_BYTES.to_owned(),
        "400".to_owned(),
    ));
    let served = serve(&mock, false, &pairs).await;
    let mut client = served.server.client().await;
    let x = "x".repeat(300);
    let ask = |user: &str| request(&asking(user, &x), None);
    let mut expect = async |user: &str, calls: u64| {
        let text = grpc_text(&mut client, ask(user), &[]).await;
        assert_eq!(text, x);
        assert_eq!(upstream_calls(&mock).await, calls, "after {user}");
    };
    expect("a", 1).await;
    expect("b", 2).await;
    expect("a", 2).await; // a hit: b is now the least recently used
    expect("c", 3).await; // c pushes b out, not a
    expect("a", 3).await;
    expect("c", 3).await;
    expect("b", 4).await;
    assert!(
        served.gov.cache.bytes() <= 1024,
        "{}",
        served.gov.cache.bytes()
    );
    assert_eq!(served.gov.cache.len(), 2);

    // An answer over max_entry_bytes is served but not kept.
    let y = "y".repeat(500);
    for calls in [5, 6] {
        let text = grpc_text(&mut client, request(&asking("big", &y), None), &[]).await;
        assert_eq!(text, y);
        assert_eq!(upstream_calls(&mock).await, calls);
    }
}

#[tokio::test]
async fn a_failed_call_is_not_stored() {
    let mock = MockProvider::start(&[]);
    let served = serve(&mock, false, &on(300)).await;
    let mut client = served.server.client().await;
    let flaky = || request("get pods [[mock:status=500,fail_times=1,fail_id=c1]]", None);
    let failed = grpc_result(&mut client, flaky(), &[]).await;
    assert!(
        matches!(failed, execute_response::Result::Error(_)),
        "{failed:?}"
    );
    grpc_text(&mut client, flaky(), &[]).await;
    assert_eq!(
        upstream_calls(&mock).await,
        2,
        "the failure was not served again"
    );
    grpc_text(&mut client, flaky(), &[]).await;
    assert_eq!(upstream_calls(&mock).await, 2, "the success was");
}

#[tokio::test]
async fn a_hit_counts_against_the_request_rate_but_not_the_token_quota() {
    let mock = MockProvider::start(&[]);
    let mut pairs = on(300);
    pairs.push((
        key::SERVER_LIMITS_GLOBAL_MAX_REQUESTS_PER_MINUTE.to_owned(),
        "3".to_owned(),
    ));
    // One answer of the mock uses 11 tokens; a second one charged would pass 12.
    pairs.push((
        key::SERVER_LIMITS_GLOBAL_MAX_TOKENS_PER_DAY.to_owned(),
        "12".to_owned(),
    ));
    let served = serve(&mock, false, &pairs).await;
    let mut client = served.server.client().await;
    for _ in 0..3 {
        grpc_text(&mut client, request("top pods", None), &[]).await;
    }
    assert_eq!(upstream_calls(&mock).await, 1);
    let first = &served.usage()[0];
    assert_eq!(
        first["input_tokens"].as_u64().unwrap_or(0) + first["output_tokens"].as_u64().unwrap_or(0),
        11,
        "{first}"
    );
    let refused = within("Execute", client.execute(request("top pods", None)))
        .await
        .expect_err("the fourth call in a minute is refused, cached or not");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(refusal(&refused).0, "rpm", "{refused:?}");
}
