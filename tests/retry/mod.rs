//! One retry policy (`vibectl::llm::retry`) on both sides of a provider call, shown against the
//! mock provider: the server calling its provider and the client calling a provider directly
//! (direct mode) both retry a rate limit after the wait the provider asks for and then succeed;
//! both give up at once, with the rate limit, when the asked wait is over the policy's limit;
//! neither retries a refused key. The server also gives up when the asked wait would pass the
//! provider's `deadline_seconds`. (The proxy client's side, which applies the same policy to the
//! server's `retry-after-ms`, is shown by `client::errors::rate_limited_*`.)

use vibectl::config::Secret;
use vibectl::config::generated::client::ClientConfig;
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;
use vibectl::llm::adapter::{AdapterError, LlmRequest, ModelAdapter};
use vibectl::llm::direct::DirectAdapter;
use vibectl::llm::retry::DEFAULT_MAX_RETRY_AFTER;
use vibectl::proto::execute_response;

use crate::support::mock::MockProvider;
use crate::support::server::{
    API_KEY, PROVIDER, TestServer, UPSTREAM_MODEL, config_pairs, execute, from_yaml, request, set,
    within,
};
use crate::support::yaml::{self, entry};

/// Retries each side is configured with.
const MAX_RETRIES: u32 = 2;

/// A 429 asking for a short wait, once per `id`, then a normal answer.
fn limited_once(id: &str) -> String {
    format!("[[mock:status=429,retry_after_ms=20,fail_times=1,fail_id={id}]] hello")
}

/// A 429 asking for a wait one second over what the policy honours.
fn limited_too_long() -> String {
    let secs = DEFAULT_MAX_RETRY_AFTER.as_secs() + 1;
    format!("[[mock:status=429,retry_after={secs}]] hello")
}

const REFUSED_KEY: &str = "[[mock:status=401]] hello";

async fn upstream_calls(mock: &MockProvider) -> u64 {
    mock.stats().await["requests_total"]
        .as_u64()
        .expect("requests_total")
}

/// What one call through a side came to: its retries when it succeeded, or the kind of
/// provider failure it ended with (`ProviderError::code`).
#[derive(Debug, PartialEq)]
enum Outcome {
    Answered { retries: u32 },
    Failed { kind: &'static str },
}

const RATE_LIMITED: &str = "rate_limited";
const AUTH: &str = "auth";

/// The server's side: one provider at the mock with [`MAX_RETRIES`], and `deadline_seconds`.
async fn server(mock: &MockProvider, deadline_seconds: f64) -> TestServer {
    let mut pairs = config_pairs(mock);
    let p = |k: &str| entry(k, PROVIDER);
    set(
        &mut pairs,
        &p(key::PROVIDERS_PROVIDER_MAX_RETRIES),
        &MAX_RETRIES.to_string(),
    );
    set(
        &mut pairs,
        &p(key::PROVIDERS_PROVIDER_DEADLINE_SECONDS),
        &deadline_seconds.to_string(),
    );
    TestServer::start(from_yaml(&yaml::config(&pairs))).await
}

async fn through_server(server: &TestServer, user: &str) -> Outcome {
    let mut client = server.client().await;
    match execute(&mut client, request(user, None)).await.1 {
        execute_response::Result::Success(s) => Outcome::Answered {
            retries: s.metrics.expect("metrics").retry_count as u32,
        },
        execute_response::Result::Error(e) => {
            let details: serde_json::Value =
                serde_json::from_str(e.error_details.as_deref().expect("details")).expect("JSON");
            let kind = match details["kind"].as_str() {
                Some(RATE_LIMITED) => RATE_LIMITED,
                Some(AUTH) => AUTH,
                _ => panic!("unexpected server failure: {e:?}"),
            };
            Outcome::Failed { kind }
        }
    }
}

/// The client's direct mode: OpenAI at the mock, [`MAX_RETRIES`], a first delay of 0 s.
fn direct(mock: &MockProvider) -> DirectAdapter {
    let mut cfg = ClientConfig::default();
    cfg.llm.model = format!("openai/{UPSTREAM_MODEL}");
    cfg.llm.max_retries = i64::from(MAX_RETRIES);
    cfg.llm.retry_delay_seconds = 0.0;
    cfg.providers.openai.base_url = Some(mock.base_url(ProviderKind::OpenAi));
    cfg.providers.openai.key = Some(Secret::new(API_KEY));
    DirectAdapter::from_config(&cfg, &|_| None).expect("direct adapter")
}

async fn through_direct(adapter: &DirectAdapter, user: &str) -> Outcome {
    let req = LlmRequest {
        user: vec![user.to_owned()],
        ..LlmRequest::default()
    };
    match within("a direct call", adapter.execute(&req)).await {
        Ok(r) => Outcome::Answered {
            retries: r.metrics.retry_count,
        },
        Err(AdapterError::Provider(e)) => Outcome::Failed { kind: e.code() },
        Err(other) => panic!("unexpected direct failure: {other}"),
    }
}

/// `call` against the mock, with the number of upstream requests it made.
async fn counted<F: std::future::Future<Output = Outcome>>(
    mock: &MockProvider,
    call: F,
) -> (Outcome, u64) {
    let before = upstream_calls(mock).await;
    let outcome = call.await;
    (outcome, upstream_calls(mock).await - before)
}

#[tokio::test]
async fn server_and_direct_client_retry_a_rate_limit_the_same_way() {
    let mock = MockProvider::start(&[]);
    let server = server(&mock, 60.0).await;
    let adapter = direct(&mock);
    let answered_after_one = (Outcome::Answered { retries: 1 }, 2);
    let given_up = |kind| (Outcome::Failed { kind }, 1);

    // A short retry-after is waited, and the retry gets the answer.
    assert_eq!(
        counted(&mock, through_server(&server, &limited_once("server"))).await,
        answered_after_one,
        "the server"
    );
    assert_eq!(
        counted(&mock, through_direct(&adapter, &limited_once("direct"))).await,
        answered_after_one,
        "the direct client"
    );

    // A wait over the policy's limit is not sat through: the call fails at once.
    assert_eq!(
        counted(&mock, through_server(&server, &limited_too_long())).await,
        given_up(RATE_LIMITED),
        "the server"
    );
    assert_eq!(
        counted(&mock, through_direct(&adapter, &limited_too_long())).await,
        given_up(RATE_LIMITED),
        "the direct client"
    );

    // A refused key is never retried.
    assert_eq!(
        counted(&mock, through_server(&server, REFUSED_KEY)).await,
        given_up(AUTH),
        "the server"
    );
    assert_eq!(
        counted(&mock, through_direct(&adapter, REFUSED_KEY)).await,
        given_up(AUTH),
        "the direct client"
    );
}

#[tokio::test]
async fn the_server_does_not_retry_past_the_providers_deadline() {
    let mock = MockProvider::start(&[]);
    // Within the policy's limit, but past the 1 s deadline: the wait the provider asks for is
    // what counts, not the (shorter) backoff.
    let server = server(&mock, 1.0).await;
    let marker = "[[mock:status=429,retry_after=2,fail_times=1,fail_id=late]] hello";
    assert_eq!(
        counted(&mock, through_server(&server, marker)).await,
        (Outcome::Failed { kind: RATE_LIMITED }, 1)
    );
}
