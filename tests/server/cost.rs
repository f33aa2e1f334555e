//! One cost rule everywhere: the cost a client is told in a call's metrics is the cost in the
//! usage record and in the Prometheus cost counter, for a model with only one of its two prices
//! set (each side is priced by its own price; a missing one counts as 0).

use vibectl::config::generated::server::key;
use vibectl::proto::execute_response;
use vibectl::proto::stream_chunk::ChunkType;
use vibectl::server::Governance;
use vibectl::server::governance::{USAGE_FILE, usage};

use super::collect_chunks;
use crate::support::mock::MockProvider;
use crate::support::server::{
    MODEL, TestServer, config_pairs, execute, from_yaml, request, set, within,
};
use crate::support::yaml::{self, entry};

/// The only price of the model: US dollars per million input tokens.
const INPUT_PRICE: f64 = 2.5;

/// The sum of the `vibectl_cost_usd` counter over its label sets, read from the exposition.
fn prometheus_cost(gov: &Governance) -> f64 {
    gov.metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("vibectl_cost_usd"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_model_with_only_an_input_price_costs_the_same_on_the_wire_and_in_the_usage_log() {
    let mock = MockProvider::start(&[]);
    let mut pairs = config_pairs(&mock);
    set(
        &mut pairs,
        &entry(key::MODELS_ID_INPUT_COST_PER_MTOK, MODEL),
        &INPUT_PRICE.to_string(),
    );
    let server = TestServer::start(from_yaml(&yaml::config(&pairs))).await;
    let gov = server.gov.clone();
    let mut client = server.client().await;

    let unary = match execute(&mut client, request("price me please", None))
        .await
        .1
    {
        execute_response::Result::Success(s) => s.metrics.expect("metrics"),
        execute_response::Result::Error(e) => panic!("the call failed: {e:?}"),
    };
    let resp = within(
        "StreamExecute",
        client.stream_execute(request("and me", None)),
    )
    .await
    .expect("StreamExecute")
    .into_inner();
    let streamed = match collect_chunks(resp).await.pop() {
        Some(ChunkType::FinalMetrics(m)) => m,
        other => panic!("the stream did not end with its metrics: {other:?}"),
    };

    gov.usage.flush();
    let records = usage::read(&server.dir.path().join(USAGE_FILE)).expect("read the usage log");
    assert_eq!(records.len(), 2, "{records:?}");
    for (metrics, record) in [&unary, &streamed].into_iter().zip(&records) {
        let input = u64::try_from(metrics.input_tokens.expect("input tokens")).expect("count");
        assert!(input > 0, "{metrics:?}");
        assert_eq!(record.input_tokens, input, "{record:?}");
        let expected = input as f64 * INPUT_PRICE / 1e6;
        let wire = metrics
            .cost_usd
            .expect("a model with an input price has a cost on the wire");
        assert!((wire - expected).abs() < 1e-12, "{wire} != {expected}");
        assert_eq!(record.cost_usd, Some(wire), "{record:?} vs {metrics:?}");
    }
    let total = unary.cost_usd.unwrap_or_default() + streamed.cost_usd.unwrap_or_default();
    let counted = prometheus_cost(&gov);
    assert!(
        (counted - total).abs() < 1e-12,
        "Prometheus counted {counted}, the calls cost {total}"
    );
}
