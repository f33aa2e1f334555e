//! A lean HTTP/1.1 client for plain-`http://` upstreams (a local vLLM, Ollama, LM Studio or
//! gateway), used for whole (non-streaming) answers when no proxy is configured in the
//! environment. Each call checks a kept-alive connection out of a small pool and drives it in
//! the calling task, instead of handing the request to a connection task as reqwest's pool
//! does; on this project's benchmark that takes about 30 µs off a proxied call. HTTPS,
//! proxies and streams go through reqwest.
//!
//! Dropping a call drops its connection, which closes the socket: that is how a cancelled call
//! stops the provider's work, as with reqwest.

use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::ProviderError;

/// Idle connections kept per endpoint: above the concurrency a busy server sends one provider
/// (bench-proxy runs 48 calls at once), so that connections are not closed after a call only to
/// be opened again for the next (at 32, one call in six paid for a new connection at
/// concurrency 48), and bounded, so a burst leaves at most this many sockets open.
const MAX_IDLE: usize = 128;
const _: () = assert!(
    MAX_IDLE >= 48,
    "bench-proxy's concurrency must not churn connections"
);
/// An idle connection older than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Environment variables that make reqwest send `http://` requests through a proxy.
const PROXY_VARS: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

type Conn = Connection<TokioIo<TcpStream>, Full<Bytes>>;
/// The request half and the connection half of one connection.
type Pair = (SendRequest<Full<Bytes>>, Pin<Box<Conn>>);

struct Idle {
    tx: SendRequest<Full<Bytes>>,
    conn: Pin<Box<Conn>>,
    since: Instant,
}

/// The connections to one `http://` endpoint.
pub(crate) struct Pool {
    addr: String,
    host: http::HeaderValue,
    path: http::Uri,
    connect_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

/// What came back: the status and headers, and the whole body.
pub(crate) struct Answer {
    pub parts: http::response::Parts,
    pub body: Bytes,
}

impl Pool {
    /// A pool for `url`, or `None` when reqwest must carry it (not `http://`, or a proxy is set
    /// in the environment `env`).
    pub(crate) fn for_url(
        url: &reqwest::Url,
        connect_timeout: Duration,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Pool> {
        if url.scheme() != "http"
            || PROXY_VARS
                .iter()
                .any(|v| env(v).is_some_and(|s| !s.is_empty()))
        {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        Some(Pool {
            addr: format!("{host}:{port}"),
            host: http::HeaderValue::from_str(&authority).ok()?,
            path: path.parse().ok()?,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A live idle connection, if there is one.
    fn checkout(&self) -> Option<Pair> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut c) = idle.pop() {
            // Polling the idle connection once reads a close the server sent meanwhile.
            let closed = c.conn.as_mut().now_or_never().is_some();
            if !closed && !c.tx.is_closed() && c.since.elapsed() < IDLE_TIMEOUT {
                return Some((c.tx, c.conn));
            }
        }
        None
    }

    fn checkin(&self, tx: SendRequest<Full<Bytes>>, conn: Pin<Box<Conn>>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                tx,
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<Pair, ProviderError> {
        let connect = async {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        };
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| ProviderError::Timeout {
                detail: format!(
                    "connecting to {} took longer than {:?}",
                    self.addr, self.connect_timeout
                ),
            })?
            .map_err(|e| ProviderError::Connect {
                detail: format!("cannot connect to {}: {e}", self.addr),
            })?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ProviderError::Connect {
                detail: format!("cannot start HTTP/1.1 with {}: {e}", self.addr),
            })?;
        Ok((tx, Box::pin(conn)))
    }

    /// POST `body` with `headers` and read the whole answer, within `limit` and at most
    /// `max_body` bytes of body.
    pub(crate) async fn post(
        &self,
        headers: &http::HeaderMap,
        body: Bytes,
        limit: Duration,
        max_body: u64,
    ) -> Result<Answer, ProviderError> {
        let exchange = async {
            // A kept-alive connection the server closed unseen fails before the request is
            // written; that one attempt is made again on a new connection.
            if let Some((tx, conn)) = self.checkout() {
                match self
                    .exchange(tx, conn, headers, body.clone(), max_body)
                    .await
                {
                    Err(Failure::Unsent(_)) => {}
                    other => return other.map_err(Failure::into_error),
                }
            }
            let (tx, conn) = self.connect().await?;
            self.exchange(tx, conn, headers, body, max_body)
                .await
                .map_err(Failure::into_error)
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| ProviderError::Timeout {
                detail: format!("no whole answer from {} within {limit:?}", self.addr),
            })?
    }

    /// One request on one connection, driven here until the body has been read; then the
    /// connection goes back to the pool if it can carry another.
    async fn exchange(
        &self,
        mut tx: SendRequest<Full<Bytes>>,
        mut conn: Pin<Box<Conn>>,
        headers: &http::HeaderMap,
        body: Bytes,
        max_body: u64,
    ) -> Result<Answer, Failure> {
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = headers.clone();
        req.headers_mut()
            .insert(http::header::HOST, self.host.clone());
        let result = {
            let work = async {
                let resp = tx.send_request(req).await.map_err(|e| {
                    if e.is_canceled() {
                        Failure::Unsent(e)
                    } else {
                        Failure::Sent(e)
                    }
                })?;
                let (parts, mut body) = resp.into_parts();
                // Read piece by piece, so a body past the cap is refused before it is held.
                let mut whole = bytes::BytesMut::new();
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.map_err(Failure::Sent)?.into_data() {
                        if (whole.len() + data.len()) as u64 > max_body {
                            return Err(Failure::TooLarge(max_body));
                        }
                        whole.extend_from_slice(&data);
                    }
                }
                Ok(Answer {
                    parts,
                    body: whole.freeze(),
                })
            };
            tokio::pin!(work);
            let mut conn_done = false;
            tokio::select! {
                biased;
                r = &mut work => r,
                r = conn.as_mut() => {
                    // The connection ended (a server that closes after answering, or a
                    // failure); what it delivered before that is still to be read.
                    conn_done = true;
                    match (work.await, r) {
                        (Ok(answer), _) => Ok(answer),
                        (Err(Failure::Sent(_)), Err(e)) => Err(Failure::Sent(e)),
                        (Err(f), _) => Err(f),
                    }
                }
            }
            .map(|a| (a, conn_done))
        };
        result.map(|(answer, conn_done)| {
            if !conn_done && !tx.is_closed() {
                self.checkin(tx, conn);
            }
            answer
        })
    }
}

/// How one exchange failed.
enum Failure {
    /// The connection was found closed before the request went out.
    Unsent(hyper::Error),
    /// It failed after the request (or part of it) was written.
    Sent(hyper::Error),
    /// The body is longer than this many bytes.
    TooLarge(u64),
}

impl Failure {
    fn into_error(self) -> ProviderError {
        match self {
            Failure::Unsent(e) | Failure::Sent(e)
                if e.is_incomplete_message() || e.is_canceled() =>
            {
                ProviderError::Connect {
                    detail: format!("the provider closed the connection: {e}"),
                }
            }
            Failure::Unsent(e) | Failure::Sent(e) => ProviderError::BadResponse {
                detail: format!("HTTP error from the provider: {e}"),
            },
            Failure::TooLarge(max) => super::stream::too_large(max),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    fn pool(addr: std::net::SocketAddr) -> Pool {
        let url = reqwest::Url::parse(&format!("http://{addr}/v1/chat/completions")).unwrap();
        Pool::for_url(&url, LIMIT, &|_| None).expect("an http:// URL")
    }

    /// Answer `n` requests on one accepted connection, numbered from `first`: `answer i`.
    async fn serve(stream: &mut TcpStream, n: usize, first: usize) {
        for i in first..first + n {
            let mut buf = vec![0u8; 8192];
            let mut got = 0;
            // The request is small: its head and body arrive together.
            while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                got += stream.read(&mut buf[got..]).await.expect("read");
            }
            let body = format!("answer {i}");
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            stream
                .write_all(format!("{head}{body}").as_bytes())
                .await
                .expect("write");
        }
    }

    #[test]
    fn only_plain_http_without_a_proxy_takes_the_lean_path() {
        let http = reqwest::Url::parse("http://127.0.0.1:9/v1/chat/completions").unwrap();
        let https = reqwest::Url::parse("https://api.openai.com/v1/chat/completions").unwrap();
        assert!(Pool::for_url(&http, LIMIT, &|_| None).is_some());
        assert!(Pool::for_url(&https, LIMIT, &|_| None).is_none());
        let proxied = |k: &str| (k == "http_proxy").then(|| "http://proxy:3128".to_owned());
        assert!(Pool::for_url(&http, LIMIT, &proxied).is_none());
    }

    #[tokio::test]
    async fn a_kept_alive_connection_is_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = pool(listener.local_addr().unwrap());
        // One connection only: a second connect would never be accepted.
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            serve(&mut s, 2, 0).await;
            let _ = s.read(&mut [0u8; 1]).await;
        });
        let headers = http::HeaderMap::new();
        for i in 0..2 {
            let a = pool
                .post(
                    &headers,
                    Bytes::from_static(b"{}"),
                    Duration::from_secs(5),
                    u64::MAX,
                )
                .await
                .expect("answered");
            assert_eq!(a.body, format!("answer {i}"));
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = pool(listener.local_addr().unwrap());
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut closed_tx = Some(closed_tx);
            for i in 0..2 {
                let (mut s, _) = listener.accept().await.unwrap();
                serve(&mut s, 1, i).await;
                // Closed after one answer, without saying so in a header.
                drop(s);
                if let Some(tx) = closed_tx.take() {
                    let _ = tx.send(());
                }
            }
        });
        let headers = http::HeaderMap::new();
        let a = pool
            .post(&headers, Bytes::new(), LIMIT, u64::MAX)
            .await
            .expect("first");
        assert_eq!(a.body, "answer 0");
        // On loopback the close has reached this side's socket once `close` has returned.
        tokio::time::timeout(LIMIT, closed)
            .await
            .expect("the server closes in time")
            .expect("the server task runs");
        let b = pool
            .post(&headers, Bytes::new(), LIMIT, u64::MAX)
            .await
            .expect("second, on a new connection");
        assert_eq!(b.body, "answer 1");
    }

    #[tokio::test]
    async fn idle_connections_are_kept_up_to_the_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = pool(listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut pairs = Vec::new();
        for _ in 0..MAX_IDLE + 8 {
            pairs.push(pool.connect().await.expect("connected"));
        }
        for (tx, conn) in pairs {
            pool.checkin(tx, conn);
        }
        assert_eq!(pool.idle.lock().unwrap().len(), MAX_IDLE);
        held.abort();
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = pool(listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.read(&mut [0u8; 8192]).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let r = pool
            .post(
                &http::HeaderMap::new(),
                Bytes::new(),
                Duration::from_millis(200),
                u64::MAX,
            )
            .await;
        assert!(
            matches!(r, Err(ProviderError::Timeout { .. })),
            "{:?}",
            r.err()
        );
    }
}
