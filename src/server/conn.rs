//! The connection limits of the gRPC listener: how many connections it holds, how long a new
//! one may stay silent, how long one may sit with no call in flight, and an accept loop that
//! backs off on errors such as EMFILE instead of spinning.
//!
//! [`incoming`] is the one accept loop, for plaintext and TLS alike. A connection takes a slot of
//! [`Limits::max_connections`] before its handshake (the first byte, or the TLS handshake) and
//! keeps it until it closes. At the limit, a new connection displaces the oldest one still in
//! its handshake, so sockets that connect and say nothing cannot lock out a client that talks;
//! when every connection is past its handshake, the loop holds the new one and accepts no more
//! until a slot frees (later connections wait in the kernel's listen backlog).
//!
//! A connection counts its calls (HTTP/2 streams, health Watch included) through
//! [`CallCountLayer`] and closes itself after [`Limits::idle_timeout`] with none in flight.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

use crate::config::generated::server::ServerConnections;

/// The first pause after an accept error that is not about one connection (EMFILE, ENFILE,
/// ENOBUFS, ENOMEM); it doubles on each error in a row up to [`ACCEPT_BACKOFF_MAX`].
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause after an accept error.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How many handshaken connections may wait for the server to take them.
const QUEUE: usize = 128;

/// The limits of one listener, from `server.connections`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_streams: u32,
    pub preface_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    pub fn from_config(c: &ServerConnections) -> Limits {
        let secs = |n: i64| Duration::from_secs(u64::try_from(n).unwrap_or(1).max(1));
        Limits {
            max_connections: usize::try_from(c.max).unwrap_or(1).max(1),
            max_streams: u32::try_from(c.max_streams).unwrap_or(1).max(1),
            preface_timeout: secs(c.preface_timeout_seconds),
            idle_timeout: secs(c.idle_timeout_seconds),
        }
    }
}

/// Pauses after accept errors: none for an error about one connection (it is gone, the next
/// may be fine), a growing pause for one about the process or the machine, which would
/// otherwise come back at once and spin the loop.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            next: ACCEPT_BACKOFF_MIN,
        }
    }
}

impl AcceptBackoff {
    /// After a successful accept.
    pub fn reset(&mut self) {
        self.next = ACCEPT_BACKOFF_MIN;
    }

    /// After a failed accept: log it and wait as long as the error calls for.
    pub async fn failed(&mut self, e: &io::Error) {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
        ) {
            tracing::debug!("accept failed: {e}");
            return;
        }
        tracing::warn!("accept failed: {e}; pausing {:?}", self.next);
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(ACCEPT_BACKOFF_MAX);
    }
}

/// The connection slots of a listener and the connections still in their handshake, oldest
/// first, each with the token that closes it.
struct Gate {
    slots: Arc<Semaphore>,
    pending: Mutex<VecDeque<(u64, CancellationToken)>>,
    next_id: AtomicU64,
}

impl Gate {
    fn pend(&self) -> (u64, CancellationToken) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        if let Ok(mut p) = self.pending.lock() {
            p.push_back((id, token.clone()));
        }
        (id, token)
    }

    fn unpend(&self, id: u64) {
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|(i, _)| *i != id);
        }
    }

    /// Close the oldest connection still in its handshake; false when there is none.
    fn evict_oldest(&self) -> bool {
        let oldest = self.pending.lock().ok().and_then(|mut p| p.pop_front());
        match oldest {
            Some((_, token)) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// Accept connections on `listener` within `limits`, run `handshake` on each (the first byte,
/// or TLS) off the accept loop, and yield the connections that complete it in time.
pub fn incoming<IO, H, Fut>(
    listener: TcpListener,
    limits: Limits,
    handshake: H,
) -> impl futures_util::Stream<Item = Result<Limited<IO>, io::Error>>
where
    IO: Send + 'static,
    H: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<IO>> + Send + 'static,
{
    let gate = Arc::new(Gate {
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        pending: Mutex::new(VecDeque::new()),
        next_id: AtomicU64::new(0),
    });
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        loop {
            // Stop (and close the listener) as soon as the server drops the stream.
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(c) => {
                    backoff.reset();
                    c
                }
                Err(e) => {
                    backoff.failed(&e).await;
                    continue;
                }
            };
            let slot = match gate.slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    if gate.evict_oldest() {
                        tracing::debug!(%peer, "at the connection limit: closed the oldest silent connection");
                    } else {
                        tracing::warn!(
                            max = limits.max_connections,
                            "at the connection limit: waiting for a connection to close"
                        );
                    }
                    tokio::select! {
                        s = gate.slots.clone().acquire_owned() => match s {
                            Ok(s) => s,
                            Err(_) => break,
                        },
                        _ = tx.closed() => break,
                    }
                }
            };
            let _ = tcp.set_nodelay(true);
            let (id, evicted) = gate.pend();
            let shake = handshake(tcp);
            let gate = gate.clone();
            let conn_tx = tx.clone();
            let limits = limits.clone();
            tokio::spawn(async move {
                let done = tokio::select! {
                    r = tokio::time::timeout(limits.preface_timeout, shake) => Some(r),
                    _ = evicted.cancelled() => None,
                };
                gate.unpend(id);
                match done {
                    Some(Ok(Ok(io))) => {
                        let conn = Limited::new(io, slot, limits.idle_timeout);
                        let _ = conn_tx.send(Ok(conn)).await;
                    }
                    Some(Ok(Err(e))) => tracing::debug!(%peer, "handshake failed: {e}"),
                    Some(Err(_)) => {
                        tracing::debug!(%peer, "no handshake in {:?}", limits.preface_timeout)
                    }
                    None => tracing::debug!(%peer, "closed to make room at the connection limit"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The plaintext handshake: wait for the client's first byte (of the HTTP/2 preface).
pub async fn first_byte(tcp: TcpStream) -> io::Result<TcpStream> {
    let mut byte = [0u8; 1];
    match tcp.peek(&mut byte).await? {
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before its first byte",
        )),
        _ => Ok(tcp),
    }
}

/// The calls in flight on one connection and since when it has had none.
#[derive(Debug)]
pub struct Calls {
    open: AtomicUsize,
    idle_since: Mutex<Instant>,
}

impl Calls {
    fn start(self: &Arc<Self>) -> CallGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        CallGuard(self.clone())
    }
}

/// One call in flight; dropped when its response body ends or is dropped.
#[derive(Debug)]
struct CallGuard(Arc<Calls>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1
            && let Ok(mut t) = self.0.idle_since.lock()
        {
            *t = Instant::now();
        }
    }
}

/// What tonic puts into each request of a [`Limited`] connection: the inner connection's
/// info and its call counter.
#[derive(Debug, Clone)]
pub struct ConnInfo<T> {
    pub inner: T,
    calls: Arc<Calls>,
}

/// A connection holding its slot; it reads as closed once it has had no call in flight for
/// the idle timeout.
pub struct Limited<IO> {
    io: IO,
    _slot: OwnedSemaphorePermit,
    calls: Arc<Calls>,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<IO> Limited<IO> {
    fn new(io: IO, slot: OwnedSemaphorePermit, idle: Duration) -> Limited<IO> {
        let now = Instant::now();
        Limited {
            io,
            _slot: slot,
            calls: Arc::new(Calls {
                open: AtomicUsize::new(0),
                idle_since: Mutex::new(now),
            }),
            idle,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// True once idle for the timeout; otherwise arms the timer so a pending read wakes then.
    fn idle_out(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let deadline = if self.calls.open.load(Ordering::SeqCst) > 0 {
                now + self.idle
            } else {
                match self.calls.idle_since.lock() {
                    Ok(t) => *t + self.idle,
                    Err(_) => now + self.idle,
                }
            };
            if deadline <= now {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
        false
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Limited<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.idle_out(cx) {
            // End of stream: the HTTP/2 connection ends as if the client had closed it.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Limited<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for Limited<IO> {
    type ConnectInfo = ConnInfo<IO::ConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        ConnInfo {
            inner: self.io.connect_info(),
            calls: self.calls.clone(),
        }
    }
}

/// The call counter of the connection a request came on.
fn calls_of(ext: &http::Extensions) -> Option<Arc<Calls>> {
    ext.get::<ConnInfo<TcpConnectInfo>>()
        .map(|c| c.calls.clone())
        .or_else(|| {
            ext.get::<ConnInfo<TlsConnectInfo<TcpConnectInfo>>>()
                .map(|c| c.calls.clone())
        })
}

/// Counts each request as a call on its connection until its response body ends.
#[derive(Debug, Clone, Default)]
pub struct CallCountLayer;

impl<S> tower::Layer<S> for CallCountLayer {
    type Service = CallCount<S>;

    fn layer(&self, inner: S) -> CallCount<S> {
        CallCount { inner }
    }
}

#[derive(Debug, Clone)]
pub struct CallCount<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResB> tower::Service<http::Request<B>> for CallCount<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
    ResB: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResB::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let guard = calls_of(req.extensions()).map(|c| c.start());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await?;
            Ok(res.map(|body| {
                tonic::body::Body::new(Counted {
                    body: tonic::body::Body::new(body),
                    _guard: guard,
                })
            }))
        })
    }
}

/// A response body that holds its call's place in the count.
struct Counted<B> {
    body: B,
    _guard: Option<CallGuard>,
}

impl<B: HttpBody + Unpin> HttpBody for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection limits of the side listeners (metrics, ACME validation): their clients need
/// a few connections, and a connection there counts no calls, so it lives at most the idle
/// timeout.
pub const SIDE_LIMITS: Limits = Limits {
    max_connections: 64,
    max_streams: 1,
    preface_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(120),
};

/// A listener for `axum::serve` with [`incoming`]'s limits, timeouts and accept backoff.
pub struct LimitedListener {
    conns: Pin<Box<dyn futures_util::Stream<Item = io::Result<Limited<TcpStream>>> + Send>>,
    local: std::net::SocketAddr,
}

impl LimitedListener {
    pub fn new(listener: TcpListener, limits: Limits) -> io::Result<LimitedListener> {
        let local = listener.local_addr()?;
        Ok(LimitedListener {
            conns: Box::pin(incoming(listener, limits, first_byte)),
            local,
        })
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = Limited<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        use futures_util::StreamExt;
        loop {
            match self.conns.next().await {
                Some(Ok(conn)) => {
                    let peer = conn.io.peer_addr().unwrap_or(self.local);
                    return (conn, peer);
                }
                Some(Err(e)) => tracing::debug!("metrics connection failed: {e}"),
                // The accept loop ends only when this stream is dropped.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Raise this process's soft limit on open files to its hard limit, so the connection limit,
/// not the file limit, is what a flood of sockets meets. Returns the limit now in force.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; RLIMIT_NOFILE is a valid resource.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok(lim.rlim_cur)
}
