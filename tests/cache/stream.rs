//! A cached answer replayed to streaming calls: gRPC StreamExecute (text chunks, then
//! `complete` and `final_metrics`), OpenAI `stream: true` and Anthropic `stream: true` events;
//! a streamed answer is stored for later calls, unless the client left before its end.

use futures_util::StreamExt;
use serde_json::{Value, json};
use vibectl::proto::stream_chunk::ChunkType;

use super::{asking, chat, grpc_text, http_text, on, post_text, serve, upstream_calls};
use crate::server::collect_chunks;
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, MODEL, PROVIDER, request, within};
use tonic::transport::Endpoint;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::server::cache::REPLAY_CHUNK_BYTES;

/// HTTP/2's initial flow-control window, its smallest.
const WINDOW: u32 = 65_535;

/// The `data:` payloads of a server-sent event body, in order.
fn data_lines(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect()
}

#[tokio::test]
async fn a_cached_answer_replays_as_a_grpc_stream_and_a_streamed_answer_is_stored() {
    let mock = MockProvider::start(&[]);
    let served = serve(&mock, false, &on(300)).await;
    let mut client = served.server.client().await;
    let long = "z".repeat(REPLAY_CHUNK_BYTES * 2 + 100);
    let ask = || request(&asking("whole first", &long), None);
    assert_eq!(grpc_text(&mut client, ask(), &[]).await, long);
    let stream = within("StreamExecute", client.stream_execute(ask()))
        .await
        .expect("a stream")
        .into_inner();
    let chunks = collect_chunks(stream).await;
    assert_eq!(upstream_calls(&mock).await, 1, "replayed, not called");
    let texts: Vec<&String> = chunks
        .iter()
        .filter_map(|c| match c {
            ChunkType::TextChunk(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!(texts.iter().map(|t| t.as_str()).collect::<String>(), long);
    match &chunks[chunks.len() - 2..] {
        [ChunkType::Complete(c), ChunkType::FinalMetrics(m)] => {
            assert_eq!(c.actual_model_used, MODEL);
            assert_eq!((m.input_tokens, m.output_tokens), (Some(0), Some(0)));
        }
        other => panic!("the stream did not end with complete and metrics: {other:?}"),
    }

    // Streamed first: stored, then a whole call is a hit.
    let ask = || request("streamed first", None);
    let stream = within("StreamExecute", client.stream_execute(ask()))
        .await
        .expect("a stream")
        .into_inner();
    let streamed: String = collect_chunks(stream)
        .await
        .into_iter()
        .filter_map(|c| match c {
            ChunkType::TextChunk(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(upstream_calls(&mock).await, 2);
    assert_eq!(grpc_text(&mut client, ask(), &[]).await, streamed);
    assert_eq!(upstream_calls(&mock).await, 2);
    let records = served.usage();
    let hits = records.iter().filter(|r| r["cache"] == "hit").count();
    assert_eq!(hits, 2, "{records:?}");
    // Only the two provider answers are timed to their first text.
    let timed = format!(
        r#"vibectl_time_to_first_chunk_seconds_count{{provider="{PROVIDER}",model="{MODEL}"}} 2"#
    );
    served.wait_for_metric(&timed).await;
}

#[tokio::test]
async fn a_cached_answer_replays_as_openai_and_anthropic_events() {
    let mock = MockProvider::start(&[]);
    let served = serve(&mock, false, &on(300)).await;
    let mut body = chat("explain the ingress");
    let whole = http_text(&served, None, &[], &body).await;
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, events) = post_text(&served, "/chat/completions", None, &[], &body).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(upstream_calls(&mock).await, 1, "replayed, not called");
    let data = data_lines(&events);
    assert_eq!(data.last(), Some(&"[DONE]"), "{events}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("a JSON chunk"))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, whole);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop"),
        "{events}"
    );
    let usage = &chunks.last().expect("a usage chunk")["usage"];
    assert_eq!(usage["total_tokens"], 0, "{events}");

    let mut message = json!({"model": MODEL, "max_tokens": 100,
        "messages": [{"role": "user", "content": "explain the ingress"}]});
    let (status, whole) = post_text(&served, "/messages", None, &[], &message).await;
    assert_eq!(status, 200, "{whole}");
    let whole: Value = serde_json::from_str(&whole).expect("JSON");
    assert_eq!(
        upstream_calls(&mock).await,
        2,
        "another API, another request"
    );
    message["stream"] = json!(true);
    let (status, events) = post_text(&served, "/messages", None, &[], &message).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(upstream_calls(&mock).await, 2, "replayed, not called");
    let payloads: Vec<Value> = data_lines(&events)
        .iter()
        .map(|d| serde_json::from_str(d).expect("a JSON event"))
        .collect();
    let text: String = payloads
        .iter()
        .filter(|e| e["type"] == "content_block_delta")
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, whole["content"][0]["text"].as_str().expect("text"));
    let kinds: Vec<&str> = payloads.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.last(), Some(&"message_stop"), "{kinds:?}");
    assert!(kinds.contains(&"message_delta"), "{kinds:?}");
}

#[tokio::test]
async fn a_stream_the_client_leaves_is_not_stored() {
    let mock = MockProvider::start(&[]);
    let served = serve(&mock, false, &on(300)).await;
    let mut body = chat("stream and leave [[mock:chunks=5,hold_after=2]]");
    body["stream"] = json!(true);
    let resp = within(
        "the stream's head",
        reqwest::Client::new()
            .post(format!("{}/chat/completions", served.base()))
            .json(&body)
            .send(),
    )
    .await
    .expect("the stream");
    assert_eq!(resp.status(), 200);
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
    // The same request, whole: not a hit, so it goes upstream; its answer is then stored.
    body["stream"] = json!(false);
    http_text(&served, None, &[], &body).await;
    assert_eq!(upstream_calls(&mock).await, 2);
    http_text(&served, None, &[], &body).await;
    assert_eq!(upstream_calls(&mock).await, 2);
}

#[tokio::test]
async fn a_replay_the_client_leaves_is_charged_nothing() {
    let mock = MockProvider::start(&[]);
    let served = serve(&mock, false, &on(300)).await;
    let mut client = served.server.client().await;
    // Far more than the stream's flow-control window.
    let long = "w".repeat(900 * 1024);
    let ask = || request(&asking("a long answer", &long), None);
    assert_eq!(grpc_text(&mut client, ask(), &[]).await.len(), long.len());
    // A client with HTTP/2's smallest windows, so the replay soon waits on it.
    let endpoint = Endpoint::from_shared(format!("http://{}", served.server.addr))
        .expect("endpoint")
        .initial_stream_window_size(WINDOW)
        .initial_connection_window_size(WINDOW);
    let channel = within("connecting", endpoint.connect())
        .await
        .expect("a connection");
    let mut small = VibectlLlmProxyClient::new(channel);
    let mut stream = within("StreamExecute", small.stream_execute(ask()))
        .await
        .expect("a stream")
        .into_inner();
    let first = within("the first chunk", stream.next())
        .await
        .expect("a chunk")
        .expect("not an error");
    assert!(
        matches!(first.chunk_type, Some(ChunkType::TextChunk(_))),
        "{first:?}"
    );
    drop(stream);
    let left = crate::support::wait::until("the replay's usage record", LIMIT, async || {
        let records = served.usage();
        match records.get(1) {
            Some(r) => Ok(r.clone()),
            None => Err(format!("{records:?}")),
        }
    })
    .await;
    assert_eq!(left["status"], "cancelled", "{left}");
    assert_eq!(left["cache"], "hit", "{left}");
    assert_eq!(
        (&left["input_tokens"], &left["output_tokens"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(upstream_calls(&mock).await, 1);
}

#[tokio::test]
async fn a_cached_tool_call_replays_with_its_call_and_stop_reason_whole_and_streamed() {
    let mock = MockProvider::start(&[]);
    let served = serve(&mock, false, &on(300)).await;
    let tool = json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let mut body = json!({"model": MODEL, "tools": [tool], "messages": [{"role": "user",
        "content": "weather? [[mock:tool_call=get_weather,tool_args={\"city\":\"Oslo\"}]]"}]});
    // Streamed first: the stream's tool call is stored whole.
    body["stream"] = json!(true);
    let (status, events) = post_text(&served, "/chat/completions", None, &[], &body).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(upstream_calls(&mock).await, 1);
    let streamed_calls = |events: &str| -> (String, String, Vec<String>) {
        let data = data_lines(events);
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).expect("a JSON chunk"))
            .collect();
        let mut name = String::new();
        let mut args = String::new();
        let mut finish = vec![];
        for c in &chunks {
            for call in c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                name.push_str(call["function"]["name"].as_str().unwrap_or_default());
                args.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            }
            if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
                finish.push(f.to_owned());
            }
        }
        (name, args, finish)
    };
    let first = streamed_calls(&events);
    assert_eq!(first.0, "get_weather", "{events}");
    assert_eq!(first.2, ["tool_calls"], "{events}");
    // Replayed as a stream: the same call and stop reason, no upstream call.
    let (status, events) = post_text(&served, "/chat/completions", None, &[], &body).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(upstream_calls(&mock).await, 1, "replayed, not called");
    assert_eq!(streamed_calls(&events), first, "{events}");
    // Replayed whole.
    body["stream"] = json!(false);
    let (status, whole) = post_text(&served, "/chat/completions", None, &[], &body).await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(upstream_calls(&mock).await, 1, "replayed, not called");
    let v: Value = serde_json::from_str(&whole).expect("JSON");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{v}");
    assert_eq!(call["function"]["arguments"], first.1, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
}
