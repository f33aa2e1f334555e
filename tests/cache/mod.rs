//! The exact response cache end to end: servers on the mock provider (whose `/mock/stats`
//! counts the calls that reached it) with `models.<id>.cache` on, over gRPC and both HTTP APIs.
//!
//! - [`memory`]: hits without an upstream call, per subject unless shareable, the TTL, the
//!   byte bounds, what is not stored, usage records and metrics, the rate limit on hits.
//! - [`stream`]: a cached answer replayed as a stream (gRPC, OpenAI and Anthropic events), and a
//!   streamed answer stored.
//! - [`bypass`]: `Cache-Control: no-cache` and the gRPC metadata `x-vibectl-cache: no-cache`.
//! - [`redis`]: replicas sharing the cache in Redis.
//! - [`config`]: a TTL of 0 refused by `config validate`, `serve` and a reload.

mod bypass;
mod config;
mod memory;
mod redis;
mod stream;

use serde_json::{Value, json};
use tonic::Request;
use tonic::transport::Channel;
use vibectl::config::generated::server::key;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::proto::{ExecuteRequest, execute_response};

use crate::http::Served;
use crate::support::mock::MockProvider;
use crate::support::server::{MODEL, within};
use crate::support::yaml::entry;

/// The keys that turn the cache on for [`MODEL`] with a TTL of `ttl` seconds.
pub fn on(ttl: u32) -> Vec<(String, String)> {
    vec![
        (
            entry(key::MODELS_ID_CACHE_ENABLED, MODEL),
            "true".to_owned(),
        ),
        (
            entry(key::MODELS_ID_CACHE_TTL_SECONDS, MODEL),
            ttl.to_string(),
        ),
    ]
}

/// A server on `mock` (auth on when `auth`) with `pairs` set.
pub async fn serve(mock: &MockProvider, auth: bool, pairs: &[(String, String)]) -> Served {
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Served::start(mock, auth, &refs).await
}

/// The calls that reached the mock so far.
pub async fn upstream_calls(mock: &MockProvider) -> u64 {
    mock.stats().await["requests_total"]
        .as_u64()
        .expect("requests_total")
}

/// User text whose answer from the mock is `reply` (no `,` or `]]` in it).
pub fn asking(user: &str, reply: &str) -> String {
    format!("{user} [[mock:reply={reply}]]")
}

/// Execute `req` (with `metadata` pairs) and return the answer text; panics on an error.
pub async fn grpc_text(
    client: &mut VibectlLlmProxyClient<Channel>,
    req: ExecuteRequest,
    metadata: &[(&'static str, &str)],
) -> String {
    match grpc_result(client, req, metadata).await {
        execute_response::Result::Success(s) => s.response_text,
        execute_response::Result::Error(e) => panic!("the call failed: {e:?}"),
    }
}

/// Execute `req` (with `metadata` pairs): its result.
pub async fn grpc_result(
    client: &mut VibectlLlmProxyClient<Channel>,
    req: ExecuteRequest,
    metadata: &[(&'static str, &str)],
) -> execute_response::Result {
    let mut request = Request::new(req);
    for (k, v) in metadata {
        request
            .metadata_mut()
            .insert(*k, v.parse().expect("ASCII metadata"));
    }
    within("Execute", client.execute(request))
        .await
        .unwrap_or_else(|s| panic!("Execute failed with a gRPC status: {s:?}"))
        .into_inner()
        .result
        .expect("a result")
}

/// An OpenAI chat body for [`MODEL`] asking `user`.
pub fn chat(user: &str) -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": user}]})
}

/// POST `body` to `path` (under `/v1`) with `headers` (a bearer `token` when given): the status
/// and the body's text.
pub async fn post_text(
    served: &Served,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", served.base()))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = within("an HTTP call", req.send()).await.expect("the call");
    let status = resp.status().as_u16();
    (
        status,
        within("the body", resp.text()).await.expect("a body"),
    )
}

/// The answer text of an OpenAI chat completion (status 200), with `token` and `headers`.
pub async fn http_text(
    served: &Served,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &Value,
) -> String {
    let (status, text) = post_text(served, "/chat/completions", token, headers, body).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content: {v}"))
        .to_owned()
}

/// The metric sample of cache lookups of [`MODEL`] with `result`, e.g. `...{...} 1`.
pub fn lookups(result: &str, n: u64) -> String {
    format!(r#"vibectl_cache_lookups_total{{model="{MODEL}",result="{result}"}} {n}"#)
}
