//! Usage of calls that do not complete: a client that drops its stream after 4 of 5 chunks (the
//! mock holds the stream after its 4th chunk until the server lets go of it, so the cancel
//! always lands mid-stream), a stream the request timeout stops and one the provider breaks off
//! are each charged once, to the quota (in memory and in Redis), the usage log and the metrics,
//! with how they ended. A completed stream is charged once, not again when it is dropped.

use tonic::transport::Channel;
use vibectl::proto::stream_chunk::ChunkType;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::server::governance::USAGE_FILE;
use vibectl::server::governance::usage::{self, Outcome, Record};

use crate::governance::redis::{RedisServer, redis_limits};
use crate::governance::{config_text, refusal};
use crate::support::mock::MockProvider;
use crate::support::server::TestServer;
use crate::support::server::{LIMIT, MODEL, request, within};

/// A quota the cancelled stream alone uses up.
const QUOTA: &str = "global:\n  max_tokens_per_day: 5";
/// Five chunks; the mock holds the stream after the 4th until it is dropped.
const HELD: &str = "[[mock:chunks=5,hold_after=4]] tell me a long story";

/// Open a stream of `HELD`, read its first 4 text chunks, and drop it.
async fn cancel_after_four(client: &mut VibectlLlmProxyClient<Channel>) {
    let mut stream = within("StreamExecute", client.stream_execute(request(HELD, None)))
        .await
        .expect("admitted")
        .into_inner();
    for n in 1..=4 {
        let c = within("a chunk", stream.message())
            .await
            .expect("not failed")
            .and_then(|c| c.chunk_type);
        assert!(
            matches!(c, Some(ChunkType::TextChunk(_))),
            "chunk {n}: {c:?}"
        );
    }
    drop(stream);
}

/// Every usage record the server wrote.
fn records(served: &TestServer) -> Vec<Record> {
    served.gov.usage.flush();
    usage::read(&served.dir.path().join(USAGE_FILE)).expect("read the usage log")
}

/// The next call is refused by the quota.
async fn next_call_refused(client: &mut VibectlLlmProxyClient<Channel>) {
    let status = within("Execute", client.execute(request("one more", None)))
        .await
        .expect_err("the cancelled stream spent the quota");
    assert_eq!(refusal(&status).0, "quota");
}

/// The one record of a call that ended with `outcome`, charged something for its output.
fn assert_one_record(served: &TestServer, outcome: Outcome) -> Record {
    let all = records(served);
    assert_eq!(all.len(), 1, "{all:?}");
    let r = all[0].clone();
    assert_eq!((r.status, r.model.as_str()), (outcome, MODEL), "{r:?}");
    assert!(r.input_tokens > 0 && r.output_tokens > 0, "{r:?}");
    assert!(r.cost_usd.is_some_and(|c| c > 0.0), "{r:?}");
    r
}

#[tokio::test]
async fn a_stream_dropped_mid_way_is_charged_to_the_quota() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&config_text(&mock, QUOTA, "")).await;
    let mut client = served.client().await;
    cancel_after_four(&mut client).await;
    mock.wait_for_stat("streams_cancelled", 1, LIMIT).await;
    served
        .wait_for_metric(r#"vibectl_usage_records_total{status="cancelled"} 1"#)
        .await;
    next_call_refused(&mut client).await;
    assert_one_record(&served, Outcome::Cancelled);
    let text = served.gov.metrics.encode();
    assert!(
        text.contains(
            r#"vibectl_tokens_total{sub="anonymous",model="mock-model",direction="output"}"#
        ),
        "{text}"
    );
    assert_eq!(mock.stats().await["streams_completed"], 0);
}

#[tokio::test]
async fn a_stream_dropped_mid_way_is_charged_to_the_redis_quota() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let text = config_text(&mock, &redis_limits(&redis.url(), QUOTA, "closed"), "");
    let (a, b) = (
        TestServer::from_text(&text).await,
        TestServer::from_text(&text).await,
    );
    cancel_after_four(&mut a.client().await).await;
    a.wait_for_metric(r#"vibectl_redis_usage_writes_total{result="ok"} 1"#)
        .await;
    // Another replica sharing the Redis counters refuses the subject too.
    next_call_refused(&mut b.client().await).await;
    assert_one_record(&a, Outcome::Cancelled);
    assert!(records(&b).is_empty());
}

#[tokio::test]
async fn a_stream_stopped_by_the_timeout_or_broken_off_is_charged() {
    let mock = MockProvider::start(&[]);
    let limits = "global:\n  request_timeout_seconds: 1";
    let served = TestServer::from_text(&config_text(&mock, limits, "")).await;
    let mut client = served.client().await;
    let stream = client
        .stream_execute(request(HELD, None))
        .await
        .expect("admitted")
        .into_inner();
    let chunks = crate::server::collect_chunks(stream).await;
    match chunks.last() {
        Some(ChunkType::Error(e)) => assert_eq!(e.error_code, "TIMEOUT", "{e:?}"),
        other => panic!("the stream did not end with a timeout: {other:?}"),
    }
    served
        .wait_for_metric(r#"vibectl_usage_records_total{status="timeout"} 1"#)
        .await;
    assert_one_record(&served, Outcome::Timeout);

    let broken = "[[mock:chunks=6,stream_error]] go on";
    let stream = client
        .stream_execute(request(broken, None))
        .await
        .expect("admitted")
        .into_inner();
    let chunks = crate::server::collect_chunks(stream).await;
    assert!(
        matches!(chunks.first(), Some(ChunkType::TextChunk(_))),
        "{chunks:?}"
    );
    assert!(
        matches!(chunks.last(), Some(ChunkType::Error(_))),
        "{chunks:?}"
    );
    served
        .wait_for_metric(r#"vibectl_usage_records_total{status="error"} 1"#)
        .await;
    let all = records(&served);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].status, Outcome::Error);
    assert!(all[1].output_tokens > 0, "{all:?}");
}

#[tokio::test]
async fn a_completed_stream_is_charged_once_with_the_providers_counts() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&config_text(&mock, "", "")).await;
    let mut client = served.client().await;
    let stream = client
        .stream_execute(request("[[mock:chunks=5]] hi", None))
        .await
        .expect("admitted")
        .into_inner();
    let chunks = crate::server::collect_chunks(stream).await;
    let Some(ChunkType::FinalMetrics(m)) = chunks.last() else {
        panic!("no final metrics: {chunks:?}");
    };
    let r = assert_one_record(&served, Outcome::Completed);
    assert_eq!(Some(r.input_tokens as i32), m.input_tokens);
    assert_eq!(Some(r.output_tokens as i32), m.output_tokens);
    // The stream is gone (collected to its end): still one record.
    client
        .execute(request("a second call", None))
        .await
        .expect("served");
    served
        .wait_for_metric(r#"vibectl_usage_records_total{status="completed"} 2"#)
        .await;
    assert_eq!(records(&served).len(), 2);
}
