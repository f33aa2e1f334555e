//! Raw HTTP against the OpenAI- and Anthropic-compatible APIs: HTTP/1.1 and HTTP/2 on the gRPC
//! port, and bad input (issue 13's list), each refused with its own 4xx in the API's error shape
//! while the server serves on; abandoned streams cancelled upstream and charged.

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vibectl::config::generated::server::key;

use super::{Served, token};
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, MODEL, assert_still_serves, within};
use vibectl::llm::ProviderKind;

fn chat(user: &str) -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": user}]})
}

/// POST `body` (raw bytes) to `/v1/chat/completions` with `headers`; the status, headers and
/// JSON body.
async fn post(
    served: &Served,
    client: &reqwest::Client,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    post_to(served, client, "/chat/completions", headers, body).await
}

/// POST `body` to `/v1{path}`, as [`post`].
async fn post_to(
    served: &Served,
    client: &reqwest::Client,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client.post(format!("{}{path}", served.base())).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = within("an HTTP call", req.send()).await.expect("the call");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = within("the body", resp.text()).await.expect("a body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, headers, value)
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// Asserts OpenAI's error shape, the status and (when given) `param` and `code`.
fn assert_error(
    got: &(u16, reqwest::header::HeaderMap, Value),
    status: u16,
    param: Option<&str>,
    code: Option<&str>,
) {
    let (s, _, body) = got;
    assert_eq!(*s, status, "{body}");
    let e = &body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(e["type"].is_string(), "{body}");
    assert!(
        e.as_object()
            .is_some_and(|o| o.contains_key("param") && o.contains_key("code")),
        "{body}"
    );
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{body}");
    }
    if let Some(c) = code {
        assert_eq!(e["code"], c, "{body}");
    }
}

#[tokio::test]
async fn http1_and_http2_share_the_grpc_port() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, false, &[]).await;
    let body = serde_json::to_vec(&chat("hi")).unwrap();
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    let got = post(&served, &h1, &[JSON], body.clone()).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(
        got.2["choices"][0]["message"]["content"],
        "Hello from the mock provider."
    );
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let got = post(&served, &h2, &[JSON], body).await;
    assert_eq!(got.0, 200, "{}", got.2);
    // gRPC on the same port.
    let mut client = served.server.client().await;
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn bad_requests_get_their_own_4xx_in_openai_shape_and_the_server_serves_on() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, true, &[(key::SERVER_HTTP_MAX_BODY_BYTES, "2048")]).await;
    let t = token("tester");
    let bearer = format!("Bearer {t}");
    let auth = ("authorization", bearer.as_str());
    let c = reqwest::Client::new();
    let good = |v: Value| serde_json::to_vec(&v).unwrap();

    let got = post(&served, &c, &[JSON, auth], b"{\"model\": ".to_vec()).await;
    assert_error(&got, 400, None, Some("invalid_json"));

    let got = post(
        &served,
        &c,
        &[("content-type", "text/plain"), auth],
        good(chat("hi")),
    )
    .await;
    assert_error(&got, 415, None, None);

    // Over server.http.max_body_bytes (2048 here; the default 4 MiB takes it, see below).
    let big = good(chat(&"x".repeat(3000)));
    let got = post(&served, &c, &[JSON, auth], big.clone()).await;
    assert_error(&got, 413, None, Some("request_too_large"));

    let mut unknown = chat("hi");
    unknown["model"] = json!("no-such-model");
    let got = post(&served, &c, &[JSON, auth], good(unknown)).await;
    assert_error(&got, 404, Some("model"), Some("model_not_found"));

    let no_user = json!({"model": MODEL, "messages": [{"role": "system", "content": "be brief"}]});
    let got = post(&served, &c, &[JSON, auth], good(no_user)).await;
    assert_error(&got, 400, Some("messages"), None);

    let mut extra = chat("hi");
    extra["logit_bias"] = json!({});
    let got = post(&served, &c, &[JSON, auth], good(extra)).await;
    assert_error(&got, 400, Some("logit_bias"), Some("unsupported_parameter"));

    let mut tools = chat("hi");
    tools["parallel_tool_calls"] = json!(false);
    let got = post(&served, &c, &[JSON, auth], good(tools)).await;
    assert_error(
        &got,
        400,
        Some("parallel_tool_calls"),
        Some("unsupported_parameter"),
    );

    let image = json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}}]}]});
    let got = post(&served, &c, &[JSON, auth], good(image)).await;
    assert_error(&got, 400, Some("messages[0].content[0].type"), None);

    let mut n2 = chat("hi");
    n2["n"] = json!(2);
    let got = post(&served, &c, &[JSON, auth], good(n2)).await;
    assert_error(&got, 400, Some("n"), None);

    let other = token("someone-else");
    let got = post(
        &served,
        &c,
        &[JSON, auth, ("x-api-key", &other)],
        good(chat("hi")),
    )
    .await;
    assert_error(&got, 400, None, Some("conflicting_credentials"));

    let got = post(&served, &c, &[JSON], good(chat("hi"))).await;
    assert_error(&got, 401, None, None);
    assert_eq!(got.2["error"]["type"], "authentication_error");

    // The same token in both headers, or in x-api-key alone, is fine.
    let got = post(
        &served,
        &c,
        &[JSON, auth, ("x-api-key", &t)],
        good(chat("hi")),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    let got = post(&served, &c, &[JSON, ("x-api-key", &t)], good(chat("hi"))).await;
    assert_eq!(got.0, 200, "{}", got.2);

    // HTTP/1.0: 426 in OpenAI's shape.
    let raw = http10(&served, "/v1/chat/completions", &bearer).await;
    assert!(raw.contains("unsupported_http_version"), "{raw}");

    // Still serving, over HTTP and gRPC; nothing refused went upstream.
    let got = post(&served, &c, &[JSON, auth], good(chat("still there?"))).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(mock.stats().await["requests_total"], 3);

    // The default body cap takes the body refused above.
    let roomy = Served::start(&mock, false, &[]).await;
    let got = post(&roomy, &c, &[JSON], big).await;
    assert_eq!(got.0, 200, "{}", got.2);
}

/// POST `{}` to `path` over HTTP/1.0 with `authorization`; the raw answer, which must be a 426.
async fn http10(served: &Served, path: &str, authorization: &str) -> String {
    let mut tcp = within(
        "connecting",
        tokio::net::TcpStream::connect(served.server.addr),
    )
    .await
    .expect("connect");
    let req = format!(
        "POST {path} HTTP/1.0\r\ncontent-type: application/json\r\n\
         authorization: {authorization}\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    tcp.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    within("the HTTP/1.0 answer", tcp.read_to_end(&mut raw))
        .await
        .expect("the answer");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    assert!(
        raw.starts_with("HTTP/1.0 426") || raw.starts_with("HTTP/1.1 426"),
        "{raw}"
    );
    raw
}

/// Asserts Anthropic's error shape, the status and the error type.
fn assert_anthropic_error(got: &(u16, reqwest::header::HeaderMap, Value), status: u16, kind: &str) {
    let (s, _, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn bad_requests_get_their_own_4xx_in_anthropic_shape_and_the_server_serves_on() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, true, &[(key::SERVER_HTTP_MAX_BODY_BYTES, "2048")]).await;
    let t = token("tester");
    let auth = ("x-api-key", t.as_str());
    let c = reqwest::Client::new();
    let message = |user: &str| {
        serde_json::to_vec(&json!({"model": MODEL, "max_tokens": 16,
            "messages": [{"role": "user", "content": user}]}))
        .unwrap()
    };
    let post = async |headers: &[(&str, &str)], body: Vec<u8>| {
        post_to(&served, &c, "/messages", headers, body).await
    };
    let invalid = "invalid_request_error";

    let got = post(&[JSON, auth], b"{\"model\": ".to_vec()).await;
    assert_anthropic_error(&got, 400, invalid);
    assert!(got.2.to_string().contains("not valid JSON"), "{}", got.2);
    let got = post(&[("content-type", "text/plain"), auth], message("hi")).await;
    assert_anthropic_error(&got, 415, invalid);
    let got = post(&[JSON, auth], message(&"x".repeat(3000))).await;
    assert_anthropic_error(&got, 413, "request_too_large");
    let unknown = json!({"model": "no-such-model", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]});
    let got = post(&[JSON, auth], serde_json::to_vec(&unknown).unwrap()).await;
    assert_anthropic_error(&got, 404, "not_found_error");
    let no_user = json!({"model": MODEL, "max_tokens": 16, "system": "be brief",
        "messages": [{"role": "assistant", "content": "hello"}]});
    let got = post(&[JSON, auth], serde_json::to_vec(&no_user).unwrap()).await;
    assert_anthropic_error(&got, 400, invalid);
    let other = format!("Bearer {}", token("someone-else"));
    let got = post(&[JSON, auth, ("authorization", &other)], message("hi")).await;
    assert_anthropic_error(&got, 400, invalid);
    assert!(got.2.to_string().contains("different tokens"), "{}", got.2);
    let got = post(&[JSON], message("hi")).await;
    assert_anthropic_error(&got, 401, "authentication_error");

    // HTTP/1.0 to the Messages API: 426 in Anthropic's shape.
    let raw = http10(&served, "/v1/messages", &format!("Bearer {t}")).await;
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    assert_eq!(body["type"], "error", "{raw}");
    assert_eq!(body["error"]["type"], invalid, "{raw}");
    assert!(raw.contains("HTTP/1.1 or HTTP/2"), "{raw}");

    // Nothing refused went upstream; still serving, over HTTP and gRPC.
    assert_eq!(mock.stats().await["requests_total"], 0);
    let got = post(&[JSON, auth], message("still there?")).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["content"][0]["text"], "Hello from the mock provider.");
}

#[tokio::test]
async fn rpm_refusals_carry_retry_after_and_retry_after_ms() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(
        &mock,
        false,
        &[(key::SERVER_LIMITS_GLOBAL_MAX_REQUESTS_PER_MINUTE, "1")],
    )
    .await;
    let c = reqwest::Client::new();
    let body = serde_json::to_vec(&chat("hi")).unwrap();
    let got = post(&served, &c, &[JSON], body.clone()).await;
    assert_eq!(got.0, 200, "{}", got.2);
    let got = post(&served, &c, &[JSON], body).await;
    assert_error(&got, 429, None, Some("rate_limit_exceeded"));
    let num = |h: &str| -> u64 {
        got.1
            .get(h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {h} header: {:?}", got.1))
    };
    let (secs, ms) = (num("retry-after"), num("retry-after-ms"));
    assert!(ms > 0 && ms <= 60_000, "{ms}");
    assert_eq!(secs, ms.div_ceil(1000));
}

#[tokio::test]
async fn the_http_api_can_be_turned_off() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, false, &[(key::SERVER_HTTP_ENABLED, "false")]).await;
    let c = reqwest::Client::new();
    let got = post(
        &served,
        &c,
        &[JSON],
        serde_json::to_vec(&chat("hi")).unwrap(),
    )
    .await;
    assert_error(&got, 404, None, Some("http_api_disabled"));
    let mut client = served.server.client().await;
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn an_abandoned_stream_cancels_upstream_and_is_charged() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, false, &[]).await;
    let c = reqwest::Client::new();
    let mut body = chat("stream and leave [[mock:chunks=5,hold_after=2]]");
    body["stream"] = json!(true);
    let resp = within(
        "the stream's head",
        c.post(format!("{}/chat/completions", served.base()))
            .json(&body)
            .send(),
    )
    .await
    .expect("the stream");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut events = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || seen.matches("data: ").count() < 3 {
        let chunk = within("a stream event", events.next())
            .await
            .expect("more events")
            .expect("an event");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(events);
    mock.wait_for_stat("streams_cancelled", 1, LIMIT).await;
    served
        .wait_for_metric(r#"vibectl_usage_records_by_api_total{api="openai",status="cancelled"} 1"#)
        .await;
    let records = served.usage();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["status"], "cancelled");
    assert!(
        records[0]["output_tokens"].as_u64().unwrap_or(0) > 0,
        "{records:?}"
    );
    // Serving on.
    let got = post(
        &served,
        &c,
        &[JSON],
        serde_json::to_vec(&chat("hi")).unwrap(),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
}

#[tokio::test]
async fn an_abandoned_anthropic_stream_cancels_upstream_and_is_charged() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, false, &[]).await;
    let c = reqwest::Client::new();
    let body = json!({"model": MODEL, "max_tokens": 64, "stream": true, "messages":
        [{"role": "user", "content": "stream and leave [[mock:chunks=5,hold_after=2]]"}]});
    let resp = within(
        "the stream's head",
        c.post(format!("{}/messages", served.base()))
            .json(&body)
            .send(),
    )
    .await
    .expect("the stream");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut events = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: content_block_delta") {
        let chunk = within("a stream event", events.next())
            .await
            .expect("more events")
            .expect("an event");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(events);
    mock.wait_for_stat("streams_cancelled", 1, LIMIT).await;
    served
        .wait_for_metric(
            r#"vibectl_usage_records_by_api_total{api="anthropic",status="cancelled"} 1"#,
        )
        .await;
    let records = served.usage();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["status"], "cancelled");
    assert_eq!(records[0]["api"], "anthropic");
    assert!(
        records[0]["output_tokens"].as_u64().unwrap_or(0) > 0,
        "{records:?}"
    );
    // Serving on.
    let got = post(
        &served,
        &c,
        &[JSON],
        serde_json::to_vec(&chat("hi")).unwrap(),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
}

#[tokio::test]
async fn provider_failures_and_the_timeout_get_their_statuses() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(
        &mock,
        false,
        &[(key::SERVER_LIMITS_GLOBAL_REQUEST_TIMEOUT_SECONDS, "1")],
    )
    .await;
    let c = reqwest::Client::new();
    let call = |user: &str| serde_json::to_vec(&chat(user)).unwrap();
    let got = post(&served, &c, &[JSON], call("[[mock:status=503]]")).await;
    assert_error(&got, 503, None, None);
    let got = post(
        &served,
        &c,
        &[JSON],
        call("[[mock:status=429,retry_after=7]]"),
    )
    .await;
    assert_error(&got, 429, None, None);
    assert_eq!(got.1["retry-after"], "7", "{:?}", got.1);
    assert_eq!(got.1["retry-after-ms"], "7000", "{:?}", got.1);
    let got = post(&served, &c, &[JSON], call("[[mock:delay_ms=5000]]")).await;
    assert_error(&got, 504, None, Some("timeout"));
    // No provider text in what the client sees.
    let got = post(
        &served,
        &c,
        &[JSON],
        call("[[mock:status=401,echo_auth=1]]"),
    )
    .await;
    assert_error(&got, 502, None, None);
    assert!(!got.2.to_string().contains("test-key"), "{}", got.2);
}

#[tokio::test]
async fn json_object_and_both_token_limits_reach_the_provider() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, false, &[]).await;
    let c = reqwest::Client::new();
    let mut body = chat("plan");
    body["response_format"] = json!({"type": "json_object"});
    body["max_tokens"] = json!(10);
    body["max_completion_tokens"] = json!(20);
    body["stop"] = json!("END");
    let got = post(&served, &c, &[JSON], serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(got.0, 200, "{}", got.2);
    let text = got.2["choices"][0]["message"]["content"]
        .as_str()
        .expect("text");
    assert!(
        serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object()),
        "{text}"
    );
    let sent = mock.last_request().await;
    assert_eq!(
        sent["body"]["response_format"]["json_schema"]["schema"],
        json!({"type": "object"}),
        "{sent}"
    );
    assert_eq!(
        sent["body"]["max_completion_tokens"], 10,
        "the smaller: {sent}"
    );
    assert_eq!(sent["body"]["stop"], json!(["END"]), "{sent}");
}

#[tokio::test]
async fn input_bounds_name_the_http_fields_in_both_shapes() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(
        &mock,
        false,
        &[(key::SERVER_LIMITS_GLOBAL_MAX_INPUT_LENGTH, "100")],
    )
    .await;
    let c = reqwest::Client::new();
    let long = "x".repeat(120);
    let turns = |at: usize| -> Vec<Value> {
        (0..5)
            .map(|i| {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                let text = if i == at { long.as_str() } else { "hi" };
                json!({"role": role, "content": text})
            })
            .collect()
    };
    let openai = |body: Value| {
        let c = &c;
        let served = &served;
        async move { post(served, c, &[JSON], serde_json::to_vec(&body).unwrap()).await }
    };
    let over = |got: &(u16, reqwest::header::HeaderMap, Value), param: &str| {
        assert_error(got, 400, Some(param), Some("input_too_long"));
        let msg = got.2["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(param) && msg.contains("100"), "{msg}");
        for grpc in ["fragments", "response_model_schema", "model_name"] {
            assert!(!msg.contains(grpc), "a gRPC name in {msg}");
        }
    };

    // OpenAI: the longest message, a system message (it is one of the messages there), the
    // response schema, the model name.
    let got = openai(json!({"model": MODEL, "messages": turns(3)})).await;
    over(&got, "messages[3].content");
    let mut sys = turns(9);
    sys.insert(0, json!({"role": "system", "content": long}));
    let got = openai(json!({"model": MODEL, "messages": sys})).await;
    over(&got, "messages[0].content");
    let props: serde_json::Map<String, Value> = (0..10)
        .map(|i| (format!("field{i}"), json!({"type": "string"})))
        .collect();
    let schema = json!({"type": "object", "properties": props});
    let got = openai(
        json!({"model": MODEL, "messages": turns(9), "response_format":
        {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}}),
    )
    .await;
    over(&got, "response_format.json_schema");
    let huge: serde_json::Map<String, Value> = (0..8000)
        .map(|i| (format!("field{i}"), json!({"type": "string"})))
        .collect();
    let got = openai(json!({"model": MODEL, "messages": turns(9), "response_format":
        {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object", "properties": huge}}}}))
    .await;
    assert_error(&got, 400, Some("response_format.json_schema"), None);
    assert!(
        got.2["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("response_format.json_schema has ")),
        "{}",
        got.2
    );
    let got = openai(json!({"model": "m".repeat(300), "messages": turns(9)})).await;
    assert_error(&got, 400, Some("model"), None);
    assert!(
        got.2["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("model has 300 bytes")),
        "{}",
        got.2
    );

    // Anthropic: its own paths (`messages.3.content`) and `system`, in its own shape.
    let url = format!("http://{}/v1/messages", served.server.addr);
    let anthropic = async |body: Value| -> (u16, Value) {
        let resp = within("a messages call", c.post(&url).json(&body).send())
            .await
            .expect("the call");
        let status = resp.status().as_u16();
        (status, within("the body", resp.json()).await.expect("JSON"))
    };
    for (body, named) in [
        (
            json!({"model": MODEL, "max_tokens": 5, "messages": turns(3)}),
            "messages.3.content",
        ),
        (
            json!({"model": MODEL, "max_tokens": 5, "system": long, "messages": turns(9)}),
            "system",
        ),
        (
            json!({"model": "m".repeat(300), "max_tokens": 5, "messages": turns(9)}),
            "model has 300 bytes",
        ),
    ] {
        let (status, v) = anthropic(body).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(named), "{named} not in {msg}");
        assert!(!msg.contains("fragments"), "{msg}");
    }

    // Nothing refused went upstream; the server serves on.
    assert_eq!(mock.stats().await["requests_total"], 0);
    let got = openai(chat("hi")).await;
    assert_eq!(got.0, 200, "{}", got.2);
}

fn tool(name: &str) -> Value {
    json!({"type": "function", "function": {"name": name, "parameters": {"type": "object"}}})
}

/// A chat with four tools, a call of the first and its result, and `edit` applied.
fn with_tools(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = json!({"model": MODEL, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "t0", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ], "tools": [tool("t0"), tool("t1"), tool("t2"), tool("t3")]});
    edit(&mut body);
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn bad_tools_get_a_400_naming_the_field_and_nothing_goes_upstream() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(
        &mock,
        false,
        &[(key::SERVER_LIMITS_GLOBAL_MAX_INPUT_LENGTH, "2000")],
    )
    .await;
    let c = reqwest::Client::new();
    let unsupported = Some("unsupported_parameter");
    let cases: Vec<(Vec<u8>, &str, Option<&str>)> = vec![
        (
            with_tools(|b| b["tools"][3]["function"]["parameters"] = json!("an object")),
            "tools[3].function.parameters",
            None,
        ),
        (
            with_tools(|b| b["tools"][3]["function"]["parameters"] = json!([1])),
            "tools[3].function.parameters",
            None,
        ),
        (
            with_tools(|b| {
                b["tools"] = Value::Array((0..129).map(|i| tool(&format!("t{i}"))).collect())
            }),
            "tools",
            None,
        ),
        (
            with_tools(|b| {
                b["tools"][1]["function"]["parameters"]["description"] = json!("x".repeat(70_000))
            }),
            "tools[1].function.parameters",
            None,
        ),
        (
            with_tools(|b| b["tools"][2]["function"]["name"] = json!("no spaces allowed")),
            "tools[2].function.name",
            None,
        ),
        (
            with_tools(|b| b["tools"][2]["function"]["name"] = json!("t0")),
            "tools",
            None,
        ),
        (
            with_tools(|b| b["tools"][0]["type"] = json!("code_interpreter")),
            "tools[0].type",
            None,
        ),
        (
            with_tools(|b| b["tools"][0]["function"]["strict"] = json!(true)),
            "tools[0].function.strict",
            unsupported,
        ),
        (
            with_tools(|b| {
                b["tool_choice"] = json!({"type": "function", "function": {"name": "nope"}})
            }),
            "tool_choice",
            None,
        ),
        (
            with_tools(|b| b["tool_choice"] = json!("sometimes")),
            "tool_choice",
            None,
        ),
        (
            with_tools(|b| {
                b["tools"] = json!([]);
                b["tool_choice"] = json!("required");
            }),
            "tool_choice",
            None,
        ),
        (
            with_tools(|b| b["response_format"] = json!({"type": "json_object"})),
            "response_format",
            None,
        ),
        (
            with_tools(|b| {
                b["messages"][1]["tool_calls"][0]["function"]["arguments"] = json!("{not json")
            }),
            "messages[1].tool_calls[0].function.arguments",
            None,
        ),
        (
            with_tools(|b| b["messages"][1]["tool_calls"][0]["id"] = json!("")),
            "messages[1].tool_calls[0].id",
            None,
        ),
        (
            with_tools(|b| {
                b["messages"][2]
                    .as_object_mut()
                    .unwrap()
                    .remove("tool_call_id")
                    .map(drop)
                    .unwrap_or(())
            }),
            "messages[2].tool_call_id",
            None,
        ),
        (
            with_tools(|b| b["messages"][0]["tool_call_id"] = json!("call_1")),
            "messages[0].tool_call_id",
            unsupported,
        ),
        (
            with_tools(|b| {
                let call = b["messages"][1]["tool_calls"][0].clone();
                b["messages"][1]["tool_calls"] = Value::Array(vec![call; 129]);
            }),
            "messages[1].tool_calls",
            None,
        ),
        (
            with_tools(|b| b["tools"][0]["function"]["description"] = json!("d".repeat(17_000))),
            "tools[0].function.description",
            None,
        ),
        // The tool schemas count towards max_input_length (2000 here).
        (
            with_tools(|b| b["tools"][0]["function"]["description"] = json!("d".repeat(2100))),
            "",
            Some("input_too_long"),
        ),
    ];
    for (body, param, code) in cases {
        let got = post(&served, &c, &[JSON], body).await;
        let param = (!param.is_empty()).then_some(param);
        assert_error(&got, 400, param, code);
    }
    assert_eq!(mock.stats().await["requests_total"], 0);
    // The same request within the bounds goes through.
    let got = post(&served, &c, &[JSON], with_tools(|_| {})).await;
    assert_eq!(got.0, 200, "{}", got.2);
}

#[tokio::test]
async fn tools_for_a_model_served_by_ollama_are_refused_naming_the_field() {
    let mock = MockProvider::start(&[]);
    let served = Served::start_on(&mock, ProviderKind::Ollama, false).await;
    let c = reqwest::Client::new();
    let got = post(&served, &c, &[JSON], with_tools(|_| {})).await;
    assert_error(&got, 400, Some("tools"), Some("unsupported_parameter"));
    assert!(
        got.2.to_string().contains("Ollama"),
        "the error says why: {}",
        got.2
    );
    let got = post(&served, &c, &[JSON], with_tools(|b| b["tools"] = json!([]))).await;
    assert_error(&got, 400, Some("messages"), Some("unsupported_parameter"));
    assert_eq!(mock.stats().await["requests_total"], 0);
    let got = post(
        &served,
        &c,
        &[JSON],
        serde_json::to_vec(&chat("hi")).unwrap(),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
}

#[tokio::test]
async fn bad_anthropic_tools_get_a_400_naming_the_field() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, false, &[]).await;
    let c = reqwest::Client::new();
    let url = format!("http://{}/v1/messages", served.server.addr);
    let base = || {
        json!({"model": MODEL, "max_tokens": 16, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "t0", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        ], "tools": (0..4).map(|i| json!({"name": format!("t{i}"), "input_schema": {"type": "object"}}))
            .collect::<Vec<_>>()})
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = base();
                b["tools"][3]["input_schema"] = json!("object");
                b
            },
            "tools.3.input_schema",
        ),
        (
            {
                let mut b = base();
                b["tools"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("input_schema");
                b
            },
            "tools.1.input_schema",
        ),
        (
            {
                let mut b = base();
                b["tools"][0]["type"] = json!("bash_20250124");
                b
            },
            "tools.0.type",
        ),
        (
            {
                let mut b = base();
                b["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
                b
            },
            "tool_choice.disable_parallel_tool_use",
        ),
        (
            {
                let mut b = base();
                b["tool_choice"] = json!({"type": "tool", "name": "nope"});
                b
            },
            "tool_choice",
        ),
        (
            {
                let mut b = base();
                b["messages"][0]["content"] =
                    json!([{"type": "tool_use", "id": "x", "name": "t0", "input": {}}]);
                b
            },
            "messages.0.content.0.type",
        ),
        (
            {
                let mut b = base();
                b["messages"][1]["content"][0]["input"] = json!("{}");
                b
            },
            "messages.1.content.0.input",
        ),
        (
            {
                let mut b = base();
                b["messages"][2]["content"][0]["is_error"] = json!("yes");
                b
            },
            "messages.2.content.0.is_error",
        ),
        (
            {
                let mut b = base();
                b["messages"][2]["content"][0]["content"] =
                    json!([{"type": "image", "source": {}}]);
                b
            },
            "messages.2.content.0.content[0].type",
        ),
        (
            {
                let mut b = base();
                let call = b["messages"][1]["content"][0].clone();
                b["messages"][1]["content"] = Value::Array(vec![call; 129]);
                b
            },
            "messages.1.content",
        ),
    ];
    for (body, field) in cases {
        let resp = within("a messages call", c.post(&url).json(&body).send())
            .await
            .expect("the call");
        assert_eq!(resp.status().as_u16(), 400, "{field}");
        let v: Value = within("the body", resp.json()).await.expect("JSON");
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{field} not in {v}");
    }
    assert_eq!(mock.stats().await["requests_total"], 0);
    let resp = within("a messages call", c.post(&url).json(&base()).send())
        .await
        .expect("the call");
    assert_eq!(resp.status().as_u16(), 200);
}
