//! Where the load generator's calls go: vibectl-server over gRPC (plaintext or TLS), or an
//! OpenAI-compatible endpoint over HTTP (the mock provider, vibectl-server's own HTTP API, another
//! gateway) with the body the server would send upstream.
//!
//! A streamed call also reports when its first piece of answer text arrived: the first gRPC
//! `text_chunk` that is not empty, or the first server-sent event whose
//! `choices[0].delta.content` is not empty (a chunk with only the role, which a gateway may send
//! before the provider has answered, does not count).

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::proto::{
    ExecuteRequest, GetServerInfoRequest, execute_response, stream_chunk::ChunkType,
};

use super::{Args, DIRECT_MODEL, Rpc, SYSTEM_TEXT, USER_TEXT};

/// Where calls go.
pub enum Target {
    Grpc {
        clients: Vec<VibectlLlmProxyClient<Channel>>,
        token: Option<MetadataValue<Ascii>>,
        model: Option<String>,
    },
    Direct {
        http: reqwest::Client,
        url: reqwest::Url,
        body: Bytes,
        api_key: Option<String>,
    },
}

impl Target {
    pub async fn connect(args: &Args) -> Result<Target, String> {
        if let Some(url) = &args.direct_openai {
            if args.rpc == Rpc::Info {
                return Err("--rpc info has no direct OpenAI equivalent".into());
            }
            let http = reqwest::Client::builder()
                .tcp_nodelay(true)
                .no_proxy()
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            let url = openai_url(url)?;
            let model = args.model.as_deref().unwrap_or(DIRECT_MODEL);
            let body = openai_body(model, args.rpc == Rpc::Stream);
            return Ok(Target::Direct {
                http,
                url,
                body,
                api_key: args.api_key.clone(),
            });
        }
        let mut endpoint = Endpoint::from_shared(args.target.clone())
            .map_err(|e| format!("bad --target {}: {e}", args.target))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5));
        if let Some(ca) = &args.tls_ca {
            let pem = std::fs::read(ca).map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
            let tls = ClientTlsConfig::new()
                .domain_name(args.tls_domain.clone())
                .ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| format!("bad TLS setup: {e}"))?;
        }
        let mut clients = Vec::new();
        for _ in 0..args.channels.max(1) {
            let channel = endpoint
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", args.target))?;
            clients.push(VibectlLlmProxyClient::new(channel));
        }
        let token = match &args.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| "the token is not valid metadata".to_owned())?,
            ),
            None => None,
        };
        Ok(Target::Grpc {
            clients,
            token,
            model: args.model.clone(),
        })
    }

    /// One call; `Ok` carries when the first answer text of a stream arrived (`None` for a
    /// whole answer), `Err` a short description of what went wrong.
    pub async fn call(&self, rpc: Rpc, worker: usize, seq: u64) -> Result<Option<Instant>, String> {
        match self {
            Target::Grpc {
                clients,
                token,
                model,
            } => {
                let mut client = clients[worker % clients.len()].clone();
                fn request<M>(msg: M, token: &Option<MetadataValue<Ascii>>) -> tonic::Request<M> {
                    let mut req = tonic::Request::new(msg);
                    if let Some(t) = token {
                        req.metadata_mut().insert("authorization", t.clone());
                    }
                    req
                }
                let execute = || ExecuteRequest {
                    system_fragments: vec![SYSTEM_TEXT.to_owned()],
                    user_fragments: vec![USER_TEXT.to_owned()],
                    model_name: model.clone(),
                    response_model_schema: None,
                    request_id: format!("loadgen-{seq}"),
                };
                let status = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
                match rpc {
                    Rpc::Execute => {
                        let resp = client
                            .execute(request(execute(), token))
                            .await
                            .map_err(status)?
                            .into_inner();
                        match resp.result {
                            Some(execute_response::Result::Success(_)) => Ok(None),
                            Some(execute_response::Result::Error(e)) => {
                                Err(format!("{}: {}", e.error_code, e.error_message))
                            }
                            None => Err("empty ExecuteResponse".into()),
                        }
                    }
                    Rpc::Stream => {
                        let mut stream = client
                            .stream_execute(request(execute(), token))
                            .await
                            .map_err(status)?
                            .into_inner();
                        let mut finished = false;
                        let mut first = None;
                        while let Some(chunk) = stream.message().await.map_err(status)? {
                            match chunk.chunk_type {
                                Some(ChunkType::Error(e)) => {
                                    return Err(format!("{}: {}", e.error_code, e.error_message));
                                }
                                Some(ChunkType::TextChunk(t))
                                    if first.is_none() && !t.is_empty() =>
                                {
                                    first = Some(Instant::now());
                                }
                                Some(ChunkType::FinalMetrics(_)) => finished = true,
                                _ => {}
                            }
                        }
                        if finished {
                            Ok(first)
                        } else {
                            Err("the stream ended without final_metrics".into())
                        }
                    }
                    Rpc::Info => client
                        .get_server_info(request(GetServerInfoRequest {}, token))
                        .await
                        .map(|_| None)
                        .map_err(status),
                }
            }
            Target::Direct {
                http,
                url,
                body,
                api_key,
            } => {
                let mut req = http
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .header(
                        "accept",
                        if rpc == Rpc::Stream {
                            "text/event-stream"
                        } else {
                            "application/json"
                        },
                    )
                    .body(body.clone());
                if let Some(k) = api_key {
                    req = req.bearer_auth(k);
                }
                let mut resp = req.send().await.map_err(|e| e.to_string())?;
                let code = resp.status();
                if !code.is_success() {
                    return Err(format!("HTTP {code}"));
                }
                if rpc == Rpc::Stream {
                    let mut events = Events::default();
                    while let Some(bytes) = resp.chunk().await.map_err(|e| e.to_string())? {
                        events.feed(&bytes)?;
                    }
                    return match events.done {
                        true => Ok(events.first),
                        false => Err("the stream ended without [DONE]".into()),
                    };
                }
                let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                match v.pointer("/choices/0/message/content") {
                    Some(Value::String(_)) => Ok(None),
                    _ => Err("no choices[0].message.content".into()),
                }
            }
        }
    }
}

/// Longest server-sent event line the stream reader holds.
const MAX_EVENT_LINE: usize = 1 << 20;

/// The reader of an OpenAI stream (`data: {chunk}` lines, then `data: [DONE]`), fed as the
/// bytes arrive: when the first answer text came, and whether the end marker did.
#[derive(Default)]
struct Events {
    line: Vec<u8>,
    first: Option<Instant>,
    done: bool,
}

impl Events {
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&bytes[..i]);
            bytes = &bytes[i + 1..];
            let line = std::mem::take(&mut self.line);
            self.event(&line)?;
        }
        self.line.extend_from_slice(bytes);
        if self.line.len() > MAX_EVENT_LINE {
            return Err(format!("a stream line is over {MAX_EVENT_LINE} bytes"));
        }
        Ok(())
    }

    fn event(&mut self, line: &[u8]) -> Result<(), String> {
        let Some(data) = line.strip_prefix(b"data:") else {
            return Ok(());
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        if self.first.is_some() {
            return Ok(());
        }
        let v: Value =
            serde_json::from_slice(data).map_err(|e| format!("a stream event is not JSON: {e}"))?;
        if v.get("error").is_some() {
            return Err(format!("an error event: {v}"));
        }
        if v.pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            self.first = Some(Instant::now());
        }
        Ok(())
    }
}

/// The Chat Completions URL for a base URL, a `/v1` URL or the full endpoint.
fn openai_url(raw: &str) -> Result<reqwest::Url, String> {
    let t = raw.trim().trim_end_matches('/');
    let full = if t.ends_with("/chat/completions") {
        t.to_owned()
    } else if t.ends_with("/v1") {
        format!("{t}/chat/completions")
    } else {
        format!("{t}/v1/chat/completions")
    };
    reqwest::Url::parse(&full).map_err(|e| format!("bad --direct-openai {raw}: {e}"))
}

/// The body vibectl-server sends upstream for the same request (see `src/llm/openai.rs`).
fn openai_body(model: &str, stream: bool) -> Bytes {
    let mut body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_TEXT},
            {"role": "user", "content": USER_TEXT},
        ],
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    Bytes::from(body.to_string())
}
