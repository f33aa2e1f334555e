//! Model names a client makes up: refused when too long or made of odd bytes, and, when they
//! route through an open catalog (no `models` configured), never a metric label or a usage
//! record as sent. Families keyed by subject hold a bounded number of label sets.

use tonic::Code;
use vibectl::llm::ProviderKind;
use vibectl::proto::execute_response;
use vibectl::server::catalog::MAX_USAGE_MODEL_BYTES;
use vibectl::server::governance::USAGE_FILE;
use vibectl::server::governance::fields::{MAX_MODEL_NAME_BYTES, field};
use vibectl::server::governance::metrics::{MAX_LABEL_SETS, Metrics, OTHER};
use vibectl::server::governance::usage;

use crate::support::mock::MockProvider;
use crate::support::server::TestServer;
use crate::support::server::{execute, request, within};

/// Calls made with made-up model names: enough to show growth, bounded.
const UNIQUE_CALLS: usize = 20;

/// The mock as the only provider, and no models: any `mock/NAME` routes to it.
fn open_catalog(mock: &MockProvider) -> String {
    format!(
        "providers:\n  mock:\n    kind: openai\n    key: test-key\n    base_url: {}\n    max_retries: 0\n",
        mock.base_url(ProviderKind::OpenAi)
    )
}

/// A valid model name of the longest allowed size, unique by `n`.
fn made_up(n: usize) -> String {
    let head = format!("mock/made-up-{n}-");
    format!("{head}{}", "x".repeat(MAX_MODEL_NAME_BYTES - head.len()))
}

#[tokio::test]
async fn a_long_or_odd_model_name_is_refused_naming_the_field() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&open_catalog(&mock)).await;
    let mut client = served.client().await;
    let long = format!("mock/{}", "x".repeat(128 * 1024));
    for name in [long.as_str(), "mock/a b", "mock/a\u{1}b", "mock/\u{e9}"] {
        let status = within("Execute", client.execute(request("hi", Some(name))))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field::MODEL_NAME), "{status:?}");
        assert!(status.message().len() < 200, "the name is not echoed");
        let status = within(
            "StreamExecute",
            client.stream_execute(request("hi", Some(name))),
        )
        .await
        .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    assert_eq!(mock.requests().await.len(), 0, "nothing went upstream");
}

#[tokio::test]
async fn made_up_model_names_grow_neither_the_metrics_nor_the_usage_log() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&open_catalog(&mock)).await;
    let mut client = served.client().await;
    let mut sizes = Vec::new();
    for n in 0..UNIQUE_CALLS {
        match execute(&mut client, request("hi", Some(&made_up(n))))
            .await
            .1
        {
            execute_response::Result::Success(_) => {}
            execute_response::Result::Error(e) => panic!("call {n} failed: {e:?}"),
        }
        sizes.push(served.gov.metrics.encode().lines().count());
    }
    let text = served.gov.metrics.encode();
    assert!(
        !text.contains("made-up"),
        "a made-up name is a label:\n{text}"
    );
    assert!(text.contains(&format!("model=\"{OTHER}\"")), "{text}");
    assert!(
        sizes.iter().all(|s| *s == sizes[0]),
        "the metrics grew per name: {sizes:?}"
    );
    served.gov.usage.flush();
    let records = usage::read(&served.dir.path().join(USAGE_FILE)).expect("usage log");
    assert_eq!(records.len(), UNIQUE_CALLS);
    for r in &records {
        assert!(r.model.len() <= MAX_USAGE_MODEL_BYTES, "{}", r.model);
        assert!(r.model.starts_with("mock/made-up-"), "{}", r.model);
    }
}

#[test]
fn a_family_holds_a_bounded_number_of_label_sets() {
    const PAST: usize = 50;
    let m = Metrics::new();
    for n in 0..MAX_LABEL_SETS + PAST {
        m.request(&format!("subject-{n}"));
    }
    let text = m.encode();
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("vibectl_requests_total{"))
        .collect();
    assert_eq!(samples.len(), MAX_LABEL_SETS + 1, "the cap and `other`");
    let other = format!("vibectl_requests_total{{sub=\"{OTHER}\"}} {PAST}");
    assert!(samples.contains(&other.as_str()), "no `{other}`");
}
