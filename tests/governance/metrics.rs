//! `/metrics` as Prometheus reads it (parsed with a real text-format parser), and `/healthz`
//! and `/readyz`.

use prometheus_parse::{Sample, Scrape, Value};

use super::{config_text, refusal};
use crate::support::mock::MockProvider;
use crate::support::server::TestServer;
use crate::support::server::{MODEL, request};

fn value(s: &Sample) -> f64 {
    match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{} is not a single value: {other:?}", s.metric),
    }
}

/// The value of the sample `name` whose labels include every `(label, value)` pair.
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(value)
}

#[tokio::test]
async fn metrics_parse_and_count_calls_refusals_tokens_and_cost() {
    let mock = MockProvider::start(&[]);
    let mut served = TestServer::from_text(&config_text(
        &mock,
        "global:\n  max_requests_per_minute: 2",
        "",
    ))
    .await;
    let mut client = served.client().await;
    client.execute(request("one", None)).await.expect("first");
    let mut s = client
        .stream_execute(request("two", None))
        .await
        .expect("second")
        .into_inner();
    while s.message().await.expect("stream").is_some() {}
    let status = client
        .execute(request("three", None))
        .await
        .expect_err("over 2 rpm");
    assert_eq!(refusal(&status).0, "rpm");

    let (code, text) = served.get("/metrics").await;
    assert_eq!(code, 200);
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    let sub = [("sub", "anonymous")];
    assert_eq!(
        sample(&scrape, "vibectl_requests_total", &sub),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "vibectl_rate_limited_total",
            &[("sub", "anonymous"), ("limit_type", "rpm")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&scrape, "vibectl_concurrent_in_flight", &sub),
        Some(0.0)
    );
    let tokens = |direction| {
        sample(
            &scrape,
            "vibectl_tokens_total",
            &[
                ("sub", "anonymous"),
                ("model", MODEL),
                ("direction", direction),
            ],
        )
    };
    assert!(tokens("input").is_some_and(|n| n > 0.0), "{text}");
    assert!(tokens("output").is_some_and(|n| n > 0.0), "{text}");
    assert!(
        sample(&scrape, "vibectl_cost_usd_total", &sub).is_some_and(|c| c > 0.0),
        "{text}"
    );
    for histogram in [
        "vibectl_request_duration_seconds",
        "vibectl_upstream_duration_seconds",
        "vibectl_time_to_first_chunk_seconds",
    ] {
        assert!(
            scrape
                .samples
                .iter()
                .any(|s| s.metric == histogram && matches!(s.value, Value::Histogram(_))),
            "no {histogram} histogram in {text}"
        );
    }
    assert_eq!(
        sample(
            &scrape,
            "vibectl_request_duration_seconds_count",
            &[("method", "Execute")]
        ),
        Some(1.0),
        "the refused call is not timed: {text}"
    );

    assert_eq!(served.get("/healthz").await.0, 200);
    assert_eq!(served.get("/readyz").await.0, 200);
    served.stop_server().await;
    assert_eq!(
        served.get("/readyz").await.0,
        503,
        "a stopped server is not ready"
    );
}
