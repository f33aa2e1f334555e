//! A mock LLM provider process for tests and benchmarks: speaks the Anthropic Messages,
//! OpenAI Chat Completions and Ollama chat wire formats on 127.0.0.1.
//!
//! Endpoints: `POST /v1/messages` (Anthropic, SSE when `stream: true`),
//! `POST /v1/chat/completions` (OpenAI, SSE; usage chunk when `stream_options.include_usage`),
//! `POST /api/chat` (Ollama, NDJSON unless `stream: false`), `GET /mock/stats` (counters),
//! `GET /mock/requests` (the last 64 requests: path, headers, body), `POST /mock/reset`,
//! `POST /mock/release` (opens the `gate` of every stream requested before it).
//!
//! The first line on stdout is `LISTENING <addr>`.
//!
//! Behaviour comes from the flags (see `--help`), overridden per request, key by key, first by
//! markers `[[mock:key=value,key=value]]` anywhere in the system or user text, then by headers
//! `x-mock-<key>` (`_` written `-`). Keys: `reply`, `reply_b64` (the reply, base64-encoded, so it
//! may hold `,` and `]]`), `chunks`, `delay_ms` (before the response
//! head), `chunk_delay_ms` (between text chunks), `status` (answer with this HTTP error in the
//! provider's error shape), `retry_after` (seconds, `retry-after` header), `retry_after_ms`
//! (`retry-after-ms` header), `garbage` (invalid JSON: the whole body, or a stream frame),
//! `truncate` (`1`: end the body half-way without the end-of-stream marker; `abort`: break the
//! connection half-way), `stream_error` (an in-stream overload error after half the chunks),
//! `fail_times` with `fail_id` (`status` only for the first N requests carrying that id, then
//! a normal answer: `[[mock:status=500,fail_times=1,fail_id=t1]]` fails once, then succeeds),
//! `hold_after` (send that many text chunks of a stream, then hold it open until the client
//! goes away: `[[mock:chunks=5,hold_after=4]]` is cancelled after its 4th chunk, every time),
//! `gate` (send that many text chunks, then wait for `POST /mock/release` before the rest:
//! `[[mock:chunks=4,gate=1]]` stays in flight after its first chunk until the test releases it).
//! `tool_call` (answer with a call of this tool, which must be among the request's tools,
//! unless the request carries tool results; its arguments are `tool_args`, or `tool_args_b64`,
//! JSON object text, default `{}`; OpenAI and Anthropic formats, whole and streamed),
//! `stop_reason` (`max_tokens`, `stop_sequence` or `refusal`, reported in the provider's
//! spelling). A request carrying tool results, without an explicit reply, is answered
//! `Tool result: <the results' text, joined by "; ">`.
//! Hostile keys (see `hostile.rs`): `hang` (no response head, ever), `trickle_ms` (a body of
//! one filler byte every N ms that never ends), `huge_mb` (a whole answer of N MiB),
//! `endless_line` (a stream line that never ends), `after_done_ms` (a frame every N ms after
//! the end marker), `retry_after_raw` (this exact `retry-after` with `status`), `echo_auth`
//! (the request's credentials in the error message with `status`).
//! `--script FILE` hands out reply sequences by rule (see `script.rs`), in place of `--reply`.
//! Request bodies may be up to [`MAX_BODY`] bytes.
//!
//! The reply: an explicit one (flag or override) is sent as is, and `@echo` replies with
//! `[system]\n<system fragments>\n[user]\n<user fragments>` (fragments joined by a blank line).
//! Without one, a structured-output request gets a document built from its schema (see
//! `schema.rs`; a schema-less JSON request gets a planner document
//! `{"action":{"action_type":"COMMAND","commands":["get","pods"],"explanation":"mock plan"}}`),
//! and any other request gets `Hello from the mock provider.` Anthropic forced-tool requests
//! get the reply as the tool input (a reply that is not a JSON object becomes `{"reply": TEXT}`).
//! Usage: input tokens = words in the system and user text; output tokens = words in the reply.

mod hostile;
mod overrides;
mod schema;
mod script;
mod stats;
mod wire;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use clap::Parser;
use futures_util::stream;
use serde_json::Value;

use overrides::{Behaviour, Truncate};
use stats::{Stats, StreamGuard};
use wire::{Counts, Format, Structured};

const DEFAULT_REPLY: &str = "Hello from the mock provider.";

/// The largest request body accepted (axum's default of 2 MB is below what tests send).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Pause before breaking a connection on purpose (`truncate=abort`).
const ABORT_PAUSE: Duration = Duration::from_millis(50);

/// A mock LLM provider speaking the Anthropic, OpenAI and Ollama wire formats on 127.0.0.1
#[derive(Debug, Clone, Parser)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Reply text (`@echo` replies with the received system and user text)
    #[arg(long)]
    reply: Option<String>,
    /// Split the reply into this many stream chunks
    #[arg(long, default_value_t = 3)]
    chunks: usize,
    /// Wait before the response head, in milliseconds
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Wait before each text chunk of a stream, in milliseconds
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Fail every request with this HTTP status
    #[arg(long)]
    fail_status: Option<u16>,
    /// With --fail-status: send `retry-after: SECS`
    #[arg(long)]
    retry_after: Option<u64>,
    /// Require this key (Anthropic `x-api-key`, OpenAI and Ollama `Authorization: Bearer`)
    #[arg(long)]
    api_key: Option<String>,
    /// Known model names, comma separated; others get 404 (default: any name)
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Exit when stdin closes (so a mock started by a test dies with it)
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Scripted reply sequences: a JSON file of `{"when": TEXT, "replies": [...]}` rules
    /// (see `script.rs`)
    #[arg(long, value_name = "FILE")]
    script: Option<std::path::PathBuf>,
}

struct App {
    args: Args,
    stats: Arc<Stats>,
    script: script::Script,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if args.exit_on_stdin_eof {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    let script = match &args.script {
        Some(path) => script::Script::load(path).map_err(std::io::Error::other)?,
        None => script::Script::default(),
    };
    let app = Arc::new(App {
        args,
        stats: Arc::new(Stats::default()),
        script,
    });
    let router = Router::new()
        .route("/v1/messages", post(anthropic))
        .route("/v1/chat/completions", post(openai))
        .route("/api/chat", post(ollama))
        .route("/mock/stats", get(stats))
        .route("/mock/requests", get(requests))
        .route("/mock/reset", post(reset))
        .route("/mock/release", post(release))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "LISTENING {addr}")?;
        out.flush()?;
    }
    axum::serve(listener, router).await
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    json_response(StatusCode::OK, &app.stats.snapshot())
}

async fn requests(State(app): State<Arc<App>>) -> Response {
    json_response(StatusCode::OK, &app.stats.requests())
}

async fn reset(State(app): State<Arc<App>>) -> Response {
    app.stats.reset();
    json_response(StatusCode::OK, &serde_json::json!({"reset": true}))
}

async fn release(State(app): State<Arc<App>>) -> Response {
    let n = app.stats.release();
    json_response(StatusCode::OK, &serde_json::json!({"releases": n}))
}

async fn anthropic(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&app, Format::Anthropic, "/v1/messages", &headers, &body).await
}

async fn openai(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(
        &app,
        Format::OpenAi,
        "/v1/chat/completions",
        &headers,
        &body,
    )
    .await
}

async fn ollama(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&app, Format::Ollama, "/api/chat", &headers, &body).await
}

fn error(format: Format, status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &wire::error_body(format, status, message))
}

fn words(texts: &[String]) -> u64 {
    texts
        .iter()
        .map(|t| t.split_whitespace().count() as u64)
        .sum()
}

/// Split `text` into at most `n` pieces of about equal length, on character boundaries.
fn split(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(n.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The 401 answer when `--api-key` is set and the request does not carry it.
fn auth_failure(app: &App, format: Format, headers: &HeaderMap) -> Option<Response> {
    let key = app.args.api_key.as_ref()?;
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ok = match format {
        Format::Anthropic => get("x-api-key") == Some(key.as_str()),
        Format::OpenAi | Format::Ollama => {
            get("authorization").and_then(|v| v.strip_prefix("Bearer ")) == Some(key.as_str())
        }
    };
    (!ok).then(|| error(format, 401, "invalid API key (mock)"))
}

async fn handle(
    app: &App,
    format: Format,
    path: &str,
    headers: &HeaderMap,
    raw: &[u8],
) -> Response {
    let body: Result<Value, _> = serde_json::from_slice(raw);
    let header_log: serde_json::Map<String, Value> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), Value::from(v.to_str().ok()?))))
        .collect();
    let logged = match &body {
        Ok(v) => v.clone(),
        Err(_) => Value::from(String::from_utf8_lossy(raw).into_owned()),
    };
    app.stats.record(path, Value::Object(header_log), logged);
    // A gate opens only at a release made after this request arrived.
    let releases = app.stats.releases();

    let Ok(body) = body else {
        return error(format, 400, "request body is not JSON");
    };
    let parsed = match wire::parse(format, &body) {
        Ok(p) => p,
        Err(e) => return error(format, 400, &e),
    };
    if format == Format::Anthropic && !headers.contains_key("anthropic-version") {
        return error(format, 400, "anthropic-version header is required");
    }

    let mut b = Behaviour {
        reply: app.args.reply.clone(),
        chunks: app.args.chunks,
        delay_ms: app.args.delay_ms,
        chunk_delay_ms: app.args.chunk_delay_ms,
        status: app.args.fail_status,
        retry_after: app.args.retry_after,
        ..Behaviour::default()
    };
    let texts: Vec<&str> = parsed
        .system
        .iter()
        .chain(&parsed.user)
        .map(String::as_str)
        .collect();
    if let Some(r) = app.script.next(&texts) {
        b.reply = Some(r);
    }
    if let Err(e) = b.apply_request(&texts, headers) {
        return error(format, 400, &e);
    }

    // The scenario a test asks for (a provider slow to answer), not a synchronisation.
    if b.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(b.delay_ms)).await;
    }
    if b.hostile.hang {
        std::future::pending::<()>().await;
    }
    if let Some(resp) = auth_failure(app, format, headers) {
        return resp;
    }
    if !app.args.models.is_empty() && !app.args.models.contains(&parsed.model) {
        let msg = format!("model '{}' not found (mock)", parsed.model);
        return error(format, 404, &msg);
    }
    let injected = b
        .status
        .filter(|s| *s >= 400)
        .filter(|_| match b.fail_times {
            Some(times) => app.stats.take_failure(&b.fail_id, times),
            None => true,
        });
    if let Some(status) = injected {
        let message = b
            .hostile
            .error_message(format!("injected HTTP {status} (mock)"), headers);
        let mut resp = error(format, status, &message);
        let h = resp.headers_mut();
        if let Some(raw) = &b.hostile.retry_after_raw
            && let Ok(v) = HeaderValue::from_str(raw)
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if let Some(secs) = b.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(ms) = b.retry_after_ms {
            h.insert("retry-after-ms", HeaderValue::from(ms));
        }
        return resp;
    }

    let mut parsed = parsed;
    parsed.stop_reason = b.stop_reason.clone();
    let call = b
        .tool_call
        .clone()
        .filter(|_| parsed.tool_results.is_empty());
    if let Some(name) = &call {
        if !parsed.tools.contains(name) {
            let msg = format!("tool_call: the request defines no tool `{name}` (mock)");
            return error(format, 400, &msg);
        }
        match format {
            Format::Anthropic => parsed.tool = Some(name.clone()),
            Format::OpenAi => parsed.call = Some(name.clone()),
            Format::Ollama => return error(format, 400, "tool_call: not for Ollama (mock)"),
        }
        b.reply = Some(b.tool_args.clone().unwrap_or_else(|| "{}".to_string()));
    } else if b.reply.is_none() && !parsed.tool_results.is_empty() {
        // Answered in text, even when a tool is forced.
        parsed.tool = None;
        parsed.structured = wire::Structured::No;
        b.reply = Some(format!("Tool result: {}", parsed.tool_results.join("; ")));
    }
    let reply = match (&b.reply, &parsed.structured) {
        (Some(r), _) if r == "@echo" => format!(
            "[system]\n{}\n[user]\n{}",
            parsed.system.join("\n\n"),
            parsed.user.join("\n\n")
        ),
        (Some(r), _) => r.clone(),
        (None, Structured::Schema(s)) => schema::instance(s).to_string(),
        (None, Structured::Json) => schema::planner_default().to_string(),
        (None, Structured::No) => DEFAULT_REPLY.to_string(),
    };
    let reply = match parsed.tool {
        Some(_) => wire::tool_input(&reply).to_string(),
        None => reply,
    };
    let counts = Counts {
        input: words(&parsed.system) + words(&parsed.user),
        output: reply.split_whitespace().count() as u64,
    };

    if !parsed.stream {
        if let Some(mb) = b.hostile.huge_mb {
            let body = wire::complete_body(format, &parsed, hostile::PAD_MARK, counts).to_string();
            let mut resp = json_response(StatusCode::OK, &Value::Null);
            *resp.body_mut() = hostile::huge(&body, mb);
            return resp;
        }
        if let Some(ms) = b.hostile.trickle_ms {
            let mut resp = json_response(StatusCode::OK, &Value::Null);
            *resp.body_mut() = hostile::trickle(format, false, Vec::new(), ms);
            return resp;
        }
        let text = if b.garbage {
            "{\"garbage".to_string()
        } else {
            wire::complete_body(format, &parsed, &reply, counts).to_string()
        };
        let text = match b.truncate {
            Truncate::No => text,
            _ => {
                let mut cut = text.len() / 2;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text[..cut].to_string()
            }
        };
        let mut resp = json_response(StatusCode::OK, &Value::Null);
        *resp.body_mut() = Body::from(text);
        return resp;
    }

    let frames = wire::stream_frames(format, &parsed, &split(&reply, b.chunks), counts);
    let hostile_body = if let Some(ms) = b.hostile.trickle_ms {
        Some(hostile::trickle(format, true, frames.start.clone(), ms))
    } else if b.hostile.endless_line {
        Some(hostile::endless_line(format, frames.start.clone()))
    } else {
        b.hostile.after_done_ms.map(|ms| {
            let all = frames.start.iter().chain(&frames.pieces).chain(&frames.end);
            hostile::after_done(format, all.cloned().collect(), ms)
        })
    };
    if let Some(body) = hostile_body {
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(wire::content_type(format, true)),
        );
        return resp;
    }
    let mut steps: Vec<Step> = frames.start.into_iter().map(Step::Now).collect();
    let delay = Duration::from_millis(b.chunk_delay_ms);
    let half = frames.pieces.len().div_ceil(2);
    if b.garbage {
        steps.push(Step::Now(wire::garbage_frame(format)));
    } else if b.stream_error {
        steps.extend(
            frames
                .pieces
                .into_iter()
                .take(half)
                .map(|f| Step::After(delay, f)),
        );
        steps.push(Step::Now(wire::stream_error_frame(format)));
    } else if b.truncate != Truncate::No {
        steps.extend(
            frames
                .pieces
                .into_iter()
                .take(half)
                .map(|f| Step::After(delay, f)),
        );
        if b.truncate == Truncate::Abort {
            steps.push(Step::Abort);
        }
    } else if let Some(n) = b.gate {
        let mut pieces = frames.pieces.into_iter();
        steps.extend(pieces.by_ref().take(n).map(|f| Step::After(delay, f)));
        steps.push(Step::Gate(releases));
        steps.extend(pieces.map(|f| Step::After(delay, f)));
        steps.extend(frames.end.into_iter().map(Step::Now));
    } else if let Some(n) = b.hold_after {
        steps.extend(
            frames
                .pieces
                .into_iter()
                .take(n)
                .map(|f| Step::After(delay, f)),
        );
        steps.push(Step::Hold);
    } else {
        steps.extend(frames.pieces.into_iter().map(|f| Step::After(delay, f)));
        steps.extend(frames.end.into_iter().map(Step::Now));
    }
    let mut resp = Response::new(stream_body(steps, StreamGuard::new(app.stats.clone())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(wire::content_type(format, true)),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// One write of a streaming body.
enum Step {
    Now(Bytes),
    After(Duration, Bytes),
    /// Fail the body, which makes the server drop the connection mid-response.
    Abort,
    /// Send nothing more until the body is dropped (the client went away).
    Hold,
    /// Wait for a release later than this count of releases, then go on.
    Gate(u64),
}

fn stream_body(steps: Vec<Step>, guard: StreamGuard) -> Body {
    let state = (steps.into_iter(), guard);
    Body::from_stream(stream::unfold(state, |(mut steps, mut guard)| async move {
        let item = match steps.next() {
            None => {
                guard.finish();
                return None;
            }
            Some(Step::Now(b)) => Ok(b),
            Some(Step::After(d, b)) => {
                // The pace a test asks for (`chunk_delay_ms`), not a synchronisation.
                if !d.is_zero() {
                    tokio::time::sleep(d).await;
                }
                Ok(b)
            }
            Some(Step::Hold) => std::future::pending().await,
            Some(Step::Gate(since)) => {
                guard.stats().wait_release(since).await;
                return Some((Ok(Bytes::new()), (steps, guard)));
            }
            Some(Step::Abort) => {
                // Pause first, so what was written so far is flushed before the connection drops:
                // the peer's reads cannot be observed from here, and this is not a test's wait.
                tokio::time::sleep(ABORT_PAUSE).await;
                guard.finish();
                Err(std::io::Error::other("mock: aborted on purpose"))
            }
        };
        Some((item, (steps, guard)))
    }))
}
