//! Routing over deployments and fallbacks (`models.<id>.deployments`, `models.<id>.fallbacks`,
//! `routing.*`), against two mock provider processes: a deployment that answers 429 rests for
//! its retry-after while the other serves, one that keeps failing is taken out and probed back,
//! a stream moves on before its first chunk, a refused request does not move on, fallbacks go in
//! order; over gRPC and over the OpenAI HTTP route. Waits are on the mocks' counters and the
//! reported deployment state, never on a clock.

mod bad_input;
mod redis;

use serde_json::{Value, json};
use vibectl::config::KeyPath;
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;
use vibectl::proto::execute_response;
use vibectl::proto::stream_chunk::ChunkType;

use crate::server::collect_chunks;
use crate::support::cli::ConfigDir;
use crate::support::mock::MockProvider;
use crate::support::server::{
    API_KEY, LIMIT, TestServer, execute, from_yaml, request, set, within,
};
use crate::support::spawned::{LISTENING, Spawned};
use crate::support::wait;
use crate::support::yaml::{self, entry};

/// The model the test configs offer (the default model).
const MODEL: &str = "routed";
/// Its first deployment (weight 1, at mock A) and its standby (weight 0, at mock B).
const FIRST: &str = "routed/a";
const SECOND: &str = "routed/b";

/// `(key, value)` pairs of the two provider entries, `mock-a` and `mock-b`, no retries.
fn providers(a: &MockProvider, b: &MockProvider) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, mock) in [("mock-a", a), ("mock-b", b)] {
        let p = |k: &str| entry(k, name);
        out.push((p(key::PROVIDERS_PROVIDER_KIND), "openai".to_owned()));
        out.push((p(key::PROVIDERS_PROVIDER_KEY), API_KEY.to_owned()));
        out.push((
            p(key::PROVIDERS_PROVIDER_BASE_URL),
            mock.base_url(ProviderKind::OpenAi),
        ));
        out.push((p(key::PROVIDERS_PROVIDER_TIMEOUT_SECONDS), "10".to_owned()));
        out.push((p(key::PROVIDERS_PROVIDER_MAX_RETRIES), "0".to_owned()));
    }
    out
}

/// `models.<model>.deployments.<name>.<leaf>`.
fn dep(template: &str, model: &str, name: &str) -> String {
    KeyPath::fill(template, &[model, name]).to_string()
}

/// A deployment `name` of `model` at `provider` with `weight`, sending `upstream`.
fn deployment(model: &str, name: &str, provider: &str, weight: u32) -> Vec<(String, String)> {
    vec![
        (
            dep(key::MODELS_ID_DEPLOYMENTS_DEPLOYMENT_PROVIDER, model, name),
            provider.to_owned(),
        ),
        (
            dep(
                key::MODELS_ID_DEPLOYMENTS_DEPLOYMENT_UPSTREAM_MODEL,
                model,
                name,
            ),
            format!("{model}-{name}-upstream"),
        ),
        (
            dep(key::MODELS_ID_DEPLOYMENTS_DEPLOYMENT_WEIGHT, model, name),
            weight.to_string(),
        ),
    ]
}

/// The config: [`MODEL`] with deployment `a` (mock A, weight 1) and standby `b` (mock B,
/// weight 0), then `extra` pairs (more models, `routing.*`).
fn config(a: &MockProvider, b: &MockProvider, extra: &[(String, String)]) -> String {
    let mut pairs = vec![(key::SERVER_DEFAULT_MODEL.to_owned(), MODEL.to_owned())];
    pairs.extend(providers(a, b));
    pairs.push((entry(key::MODELS_ID_PROVIDER, MODEL), "mock-a".to_owned()));
    pairs.extend(deployment(MODEL, "a", "mock-a", 1));
    pairs.extend(deployment(MODEL, "b", "mock-b", 0));
    for (k, v) in extra {
        set(&mut pairs, k, v);
    }
    yaml::config(&pairs)
}

async fn start(a: &MockProvider, b: &MockProvider, extra: &[(String, String)]) -> TestServer {
    TestServer::start(from_yaml(&config(a, b, extra))).await
}

async fn requests(mock: &MockProvider) -> u64 {
    mock.stats().await["requests_total"]
        .as_u64()
        .expect("requests_total")
}

/// The deployment's state as `/metrics` reports it (healthy, cooling, out or probe).
async fn state(server: &TestServer, deployment: &str) -> String {
    let (status, text) = server.get("/metrics").await;
    assert_eq!(status, 200, "{text}");
    for s in ["healthy", "cooling", "out", "probe"] {
        let needle = format!("deployment=\"{deployment}\",state=\"{s}\"}} 1");
        if text
            .lines()
            .any(|l| l.starts_with("vibectl_deployment_state{") && l.ends_with(&needle))
        {
            return s.to_owned();
        }
    }
    panic!("/metrics shows no state of {deployment}:\n{text}")
}

/// What `vibectl-server status` prints for the running `server`.
async fn status(server: &TestServer) -> String {
    let url = format!("http://{}/metrics", server.metrics_addr);
    tokio::task::spawn_blocking(move || {
        ConfigDir::new()
            .run_server(&["status", "--metrics-url", &url])
            .ok()
            .to_owned()
    })
    .await
    .expect("status")
}

/// Wait (bounded) until `/metrics` reports `deployment` in `want`.
async fn wait_state(server: &TestServer, deployment: &str, want: &str) {
    wait::until(
        &format!("{deployment} becoming {want}"),
        LIMIT,
        async || {
            let s = state(server, deployment).await;
            if s == want { Ok(()) } else { Err(s) }
        },
    )
    .await;
}

/// How a test call goes in.
#[derive(Debug, Clone, Copy)]
enum Via {
    Grpc,
    Http,
}

/// One whole call of `user` to `model`: the model the answer reports, or the failure (gRPC
/// error code, or HTTP status and error code).
async fn call(server: &TestServer, via: Via, model: &str, user: &str) -> Result<String, String> {
    match via {
        Via::Grpc => {
            let mut client = server.client().await;
            match execute(&mut client, request(user, Some(model))).await.1 {
                execute_response::Result::Success(s) => Ok(s.actual_model_used),
                execute_response::Result::Error(e) => Err(e.error_code),
            }
        }
        Via::Http => {
            let (status, body) = post(server, model, user, false).await;
            let body: Value = serde_json::from_str(&body).expect("JSON");
            if status == 200 {
                Ok(body["model"].as_str().expect("model").to_owned())
            } else {
                Err(format!("{status} {}", body["error"]["code"]))
            }
        }
    }
}

/// POST a chat completion to the server's OpenAI route: status and body text.
async fn post(server: &TestServer, model: &str, user: &str, stream: bool) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let resp = within(
        "an HTTP call",
        client
            .post(format!("http://{}/v1/chat/completions", server.addr))
            .json(&json!({"model": model, "stream": stream,
                "messages": [{"role": "user", "content": user}]}))
            .send(),
    )
    .await
    .expect("the HTTP call");
    let status = resp.status().as_u16();
    (status, within("the body", resp.text()).await.expect("body"))
}

/// The deployment of each usage record so far.
fn served_by(server: &TestServer) -> Vec<String> {
    server.gov.usage.flush();
    let file = server
        .dir
        .path()
        .join(vibectl::server::governance::USAGE_FILE);
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON");
            v["deployment"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

/// A 429 with `retry-after: 2` from the first deployment: the call is served by the second at
/// once, the first gets no request while it cools down, and once `/metrics` shows it healthy
/// again a call reaches it.
async fn rate_limit_rests_the_deployment(via: Via) {
    let a = MockProvider::start(&["--fail-status", "429", "--retry-after", "2"]);
    let b = MockProvider::start(&[]);
    let server = start(&a, &b, &[]).await;
    assert_eq!(state(&server, FIRST).await, "healthy");

    assert_eq!(call(&server, via, MODEL, "hi").await, Ok(MODEL.to_owned()));
    assert_eq!((requests(&a).await, requests(&b).await), (1, 1));
    assert_eq!(state(&server, FIRST).await, "cooling");
    assert_eq!(state(&server, SECOND).await, "healthy");
    let shown = status(&server).await;
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with(FIRST) && l.contains(" cooling ")),
        "{shown}"
    );

    // While it cools down, the first deployment gets nothing.
    assert_eq!(
        call(&server, via, MODEL, "again").await,
        Ok(MODEL.to_owned())
    );
    assert_eq!((requests(&a).await, requests(&b).await), (1, 2));
    assert_eq!(served_by(&server), [SECOND, SECOND]);

    // Its rest over, it is asked again (and, still limited, rests again).
    wait_state(&server, FIRST, "healthy").await;
    assert_eq!(
        call(&server, via, MODEL, "later").await,
        Ok(MODEL.to_owned())
    );
    assert_eq!((requests(&a).await, requests(&b).await), (2, 3));
    assert!(server.gov.metrics.encode().contains(
        "vibectl_deployment_calls_total{model=\"routed\",deployment=\"routed/a\",outcome=\"rate_limited\"} 2"
    ));
}

#[tokio::test]
async fn a_429_rests_the_deployment_for_its_retry_after_over_grpc() {
    rate_limit_rests_the_deployment(Via::Grpc).await;
}

#[tokio::test]
async fn a_429_rests_the_deployment_for_its_retry_after_over_http() {
    rate_limit_rests_the_deployment(Via::Http).await;
}

/// `routing.*` pairs.
fn routing(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// How long `/metrics` says `deployment` rests still, in seconds.
async fn rest(server: &TestServer, deployment: &str) -> f64 {
    let (_, text) = server.get("/metrics").await;
    let prefix = format!(
        "vibectl_deployment_rest_seconds{{model=\"{MODEL}\",deployment=\"{deployment}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no rest of {deployment}:\n{text}"))
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn a_429_without_retry_after_rests_the_default_and_a_long_one_is_cut() {
    let a = MockProvider::start(&["--fail-status", "429"]);
    let b = MockProvider::start(&[]);
    let extra = routing(&[
        (key::ROUTING_DEFAULT_COOLDOWN_SECONDS, "1000"),
        (key::ROUTING_MAX_COOLDOWN_SECONDS, "2000"),
    ]);
    let server = start(&a, &b, &extra).await;
    assert_eq!(
        call(&server, Via::Grpc, MODEL, "hi").await,
        Ok(MODEL.to_owned())
    );
    assert_eq!(state(&server, FIRST).await, "cooling");
    let left = rest(&server, FIRST).await;
    assert!(left > 900.0 && left <= 1000.0, "{left}");

    // A retry-after of an hour rests it for max_cooldown_seconds only.
    let extra = routing(&[(key::ROUTING_MAX_COOLDOWN_SECONDS, "100")]);
    let server = start(&a, &b, &extra).await;
    let limited = "[[mock:retry_after=3600]] hi";
    assert_eq!(
        call(&server, Via::Grpc, MODEL, limited).await,
        Ok(MODEL.to_owned())
    );
    let left = rest(&server, FIRST).await;
    assert!(left > 50.0 && left <= 100.0, "{left}");
    assert_eq!(requests(&a).await, 2);
}

/// Mock A fails with 500 the first two requests of each test; B answers.
const STORM: &str = "[[mock:fail_times=2,fail_id=storm]] hi";

#[tokio::test]
async fn a_500_storm_takes_a_deployment_out_and_a_probe_brings_it_back() {
    let a = MockProvider::start(&["--fail-status", "500"]);
    let b = MockProvider::start(&[]);
    let extra = routing(&[
        (key::ROUTING_FAILURE_THRESHOLD, "2"),
        (key::ROUTING_FAILURE_WINDOW_SECONDS, "600"),
        // Long enough for the checks while it is out to finish on a loaded machine.
        (key::ROUTING_BACKOFF_SECONDS, "3"),
    ]);
    let server = start(&a, &b, &extra).await;
    for via in [Via::Grpc, Via::Http] {
        assert_eq!(call(&server, via, MODEL, STORM).await, Ok(MODEL.to_owned()));
    }
    assert_eq!((requests(&a).await, requests(&b).await), (2, 2));
    assert_eq!(state(&server, FIRST).await, "out");
    // Out: no request reaches it.
    assert_eq!(
        call(&server, Via::Grpc, MODEL, STORM).await,
        Ok(MODEL.to_owned())
    );
    assert_eq!((requests(&a).await, requests(&b).await), (2, 3));

    // Its back-off over, the next call probes it; the mock now answers, so it is back.
    wait_state(&server, FIRST, "probe").await;
    assert_eq!(
        call(&server, Via::Http, MODEL, STORM).await,
        Ok(MODEL.to_owned())
    );
    assert_eq!((requests(&a).await, requests(&b).await), (3, 3));
    assert_eq!(state(&server, FIRST).await, "healthy");
    assert_eq!(served_by(&server).last().map(String::as_str), Some(FIRST));
}

#[tokio::test]
async fn failures_outside_the_window_do_not_add_up_and_the_back_off_is_cut_to_its_maximum() {
    let a = MockProvider::start(&["--fail-status", "500"]);
    let b = MockProvider::start(&[]);
    let extra = routing(&[
        (key::ROUTING_FAILURE_THRESHOLD, "2"),
        (key::ROUTING_FAILURE_WINDOW_SECONDS, "0.1"),
    ]);
    let server = start(&a, &b, &extra).await;
    assert_eq!(
        call(&server, Via::Grpc, MODEL, "hi").await,
        Ok(MODEL.to_owned())
    );
    // The second failure comes after the mock held its answer 300 ms: past the window.
    let slow = "[[mock:delay_ms=300]] hi";
    assert_eq!(
        call(&server, Via::Grpc, MODEL, slow).await,
        Ok(MODEL.to_owned())
    );
    assert_eq!(state(&server, FIRST).await, "healthy");
    assert_eq!(requests(&a).await, 2);

    // One failure takes it out with a threshold of 1, for max_backoff_seconds, not an hour.
    let extra = routing(&[
        (key::ROUTING_FAILURE_THRESHOLD, "1"),
        (key::ROUTING_BACKOFF_SECONDS, "3600"),
        (key::ROUTING_MAX_BACKOFF_SECONDS, "3"),
    ]);
    let server = start(&a, &b, &extra).await;
    assert_eq!(
        call(&server, Via::Grpc, MODEL, "hi").await,
        Ok(MODEL.to_owned())
    );
    assert_eq!(state(&server, FIRST).await, "out");
    assert!(rest(&server, FIRST).await <= 3.0);
    wait_state(&server, FIRST, "probe").await;
}

#[tokio::test]
async fn a_stream_moves_on_before_its_first_chunk() {
    let a = MockProvider::start(&["--fail-status", "429", "--retry-after", "60"]);
    let b = MockProvider::start(&["--reply", "from b"]);
    let server = start(&a, &b, &[]).await;
    let mut client = server.client().await;
    let resp = within("StreamExecute", client.stream_execute(request("hi", None)))
        .await
        .expect("StreamExecute")
        .into_inner();
    let chunks = collect_chunks(resp).await;
    let text: String = chunks
        .iter()
        .filter_map(|c| match c {
            ChunkType::TextChunk(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "from b");
    assert!(
        chunks
            .iter()
            .any(|c| matches!(c, ChunkType::Complete(done) if done.actual_model_used == MODEL)),
        "{chunks:?}"
    );
    assert!(!chunks.iter().any(|c| matches!(c, ChunkType::Error(_))));
    assert_eq!((requests(&a).await, requests(&b).await), (1, 1));
}

#[tokio::test]
async fn a_stream_that_fails_after_its_first_chunk_does_not_move_on() {
    let a = MockProvider::start(&["--reply", "from a, in four chunks"]);
    let b = MockProvider::start(&["--reply", "from b"]);
    let server = start(&a, &b, &[]).await;
    let mut client = server.client().await;
    let ask = request("hi [[mock:chunks=4,stream_error=1]]", None);
    let resp = within("StreamExecute", client.stream_execute(ask))
        .await
        .expect("StreamExecute")
        .into_inner();
    let chunks = collect_chunks(resp).await;
    let text: String = chunks
        .iter()
        .filter_map(|c| match c {
            ChunkType::TextChunk(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        !text.is_empty() && "from a, in four chunks".starts_with(&text),
        "{chunks:?}"
    );
    assert!(
        matches!(chunks.last(), Some(ChunkType::Error(_))),
        "the stream ends with the error: {chunks:?}"
    );
    assert_eq!((requests(&a).await, requests(&b).await), (1, 0));
}

#[tokio::test]
async fn a_request_the_provider_refuses_does_not_move_on() {
    let a = MockProvider::start(&["--fail-status", "400"]);
    let b = MockProvider::start(&[]);
    let server = start(&a, &b, &[]).await;
    assert_eq!(
        call(&server, Via::Grpc, MODEL, "hi").await,
        Err("INVALID_REQUEST".to_owned())
    );
    let http = call(&server, Via::Http, MODEL, "hi").await;
    assert!(
        http.as_ref().is_err_and(|e| e.starts_with("400")),
        "{http:?}"
    );
    assert_eq!((requests(&a).await, requests(&b).await), (2, 0));
    assert_eq!(state(&server, FIRST).await, "healthy");
}

/// `primary` at mock A, falling back to `second` (also at A) then `third` (at B).
fn fallback_models() -> Vec<(String, String)> {
    let m = |k: &str, id: &str| entry(k, id);
    vec![
        (m(key::MODELS_ID_PROVIDER, "primary"), "mock-a".to_owned()),
        (
            m(key::MODELS_ID_FALLBACKS, "primary"),
            "[second, third]".to_owned(),
        ),
        (m(key::MODELS_ID_PROVIDER, "second"), "mock-a".to_owned()),
        (m(key::MODELS_ID_PROVIDER, "third"), "mock-b".to_owned()),
    ]
}

#[tokio::test]
async fn fallbacks_are_tried_in_order_and_the_answering_model_is_reported() {
    let a = MockProvider::start(&["--fail-status", "503"]);
    let b = MockProvider::start(&[]);
    let server = start(&a, &b, &fallback_models()).await;
    assert_eq!(
        call(&server, Via::Grpc, "primary", "hi").await,
        Ok("third".to_owned())
    );
    let asked: Vec<String> = a
        .requests()
        .await
        .iter()
        .map(|r| r["body"]["model"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(asked, ["primary", "second"]);
    assert_eq!(requests(&b).await, 1);

    // Over HTTP, streamed: the chunks name the model that answers.
    let (status, body) = post(&server, "primary", "hi", true).await;
    assert_eq!(status, 200, "{body}");
    let models: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).expect("JSON")["model"].clone())
        .collect();
    assert_eq!(models.last(), Some(&json!("third")), "{body}");
    assert_eq!(served_by(&server), ["third", "third"]);
    assert!(
        server
            .gov
            .metrics
            .encode()
            .contains("vibectl_fallbacks_total{model=\"primary\",to=\"third\"} 2")
    );
}

#[tokio::test]
async fn an_answer_of_a_fallback_is_not_cached_as_the_model_asked_for() {
    let a = MockProvider::start(&["--fail-status", "503"]);
    let b = MockProvider::start(&[]);
    let mut models = fallback_models();
    for (k, v) in [
        (key::MODELS_ID_CACHE_ENABLED, "true"),
        (key::MODELS_ID_CACHE_TTL_SECONDS, "300"),
    ] {
        models.push((entry(k, "primary"), v.to_owned()));
        models.push((entry(k, "third"), v.to_owned()));
    }
    let server = start(&a, &b, &models).await;
    for _ in 0..2 {
        assert_eq!(
            call(&server, Via::Grpc, "primary", "hi").await,
            Ok("third".to_owned())
        );
    }
    // Both calls went upstream: the fallback's answer was not kept under `primary`.
    assert_eq!(requests(&b).await, 2);
    assert_eq!(served_by(&server), ["third", "third"]);
    // The model itself, asked directly, is cached: its second call is a hit with no deployment.
    for _ in 0..2 {
        assert_eq!(
            call(&server, Via::Grpc, "third", "hi").await,
            Ok("third".to_owned())
        );
    }
    assert_eq!(requests(&b).await, 3);
    assert_eq!(served_by(&server), ["third", "third", "third", ""]);
}

#[tokio::test]
async fn a_deployment_may_have_its_own_key_and_base_url() {
    let a = MockProvider::start(&[]);
    let b = MockProvider::start(&["--api-key", "own-key"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("own-key");
    std::fs::write(&key_file, "own-key\n").expect("write the key file");
    let mut extra = Vec::new();
    for (model, own, value) in [
        (
            "by-key",
            key::MODELS_ID_DEPLOYMENTS_DEPLOYMENT_KEY,
            "own-key".to_owned(),
        ),
        (
            "by-file",
            key::MODELS_ID_DEPLOYMENTS_DEPLOYMENT_KEY_FILE,
            key_file.display().to_string(),
        ),
    ] {
        extra.push((entry(key::MODELS_ID_PROVIDER, model), "mock-a".to_owned()));
        extra.push((
            dep(
                key::MODELS_ID_DEPLOYMENTS_DEPLOYMENT_BASE_URL,
                model,
                "elsewhere",
            ),
            b.base_url(ProviderKind::OpenAi),
        ));
        extra.push((dep(own, model, "elsewhere"), value));
    }
    let server = start(&a, &b, &extra).await;
    for model in ["by-key", "by-file"] {
        assert_eq!(
            call(&server, Via::Grpc, model, "hi").await,
            Ok(model.to_owned())
        );
    }
    // Both went to B, with B's key (B refuses any other), none to the provider's own URL.
    assert_eq!((requests(&a).await, requests(&b).await), (0, 2));
}

#[tokio::test]
async fn when_every_deployment_rests_the_call_still_tries_them() {
    let a = MockProvider::start(&["--fail-status", "429", "--retry-after", "60"]);
    let b = MockProvider::start(&["--fail-status", "429", "--retry-after", "60"]);
    let server = start(&a, &b, &[]).await;
    for n in 1..=2 {
        assert_eq!(
            call(&server, Via::Grpc, MODEL, "hi").await,
            Err("PROVIDER_RATE_LIMITED".to_owned())
        );
        assert_eq!((requests(&a).await, requests(&b).await), (n, n));
    }
    assert_eq!(state(&server, SECOND).await, "cooling");
}

#[tokio::test]
async fn the_server_logs_each_change_of_a_deployments_state() {
    let a = MockProvider::start(&["--fail-status", "429", "--retry-after", "60"]);
    let b = MockProvider::start(&[]);
    let mut server = Spawned::start(&config(&a, &b, &[]), &[]);
    server.line(LISTENING);
    let reply = within(
        "Execute",
        server.client().await.execute(request("hi", None)),
    )
    .await
    .expect("Execute")
    .into_inner();
    assert!(matches!(
        reply.result,
        Some(execute_response::Result::Success(_))
    ));
    server.wait_stderr(&format!("deployment {FIRST} is now cooling"));
}
