//! The Strict-Transport-Security header (`tls.hsts.*`): a tower layer that adds it to every HTTP
//! response of the gRPC server, unary and streaming calls and errors alike (vibectl 0.11.6 sent
//! it as trailing metadata of unary calls only).

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryFutureExt};
use http::header::{HeaderValue, STRICT_TRANSPORT_SECURITY};
use tower::{Layer, Service};

use crate::config::generated::server::TlsHsts;

/// The header value of `hsts`: `max-age=N[; includeSubDomains][; preload]`.
pub fn header_value(hsts: &TlsHsts) -> HeaderValue {
    let mut v = format!("max-age={}", hsts.max_age);
    if hsts.include_subdomains {
        v.push_str("; includeSubDomains");
    }
    if hsts.preload {
        v.push_str("; preload");
    }
    HeaderValue::from_str(&v).expect("digits and ASCII words make a valid header value")
}

/// Adds `strict-transport-security` to every response when it holds a value; a no-op otherwise
/// (plaintext, or `tls.hsts.enabled` false), so the server's type is the same either way.
#[derive(Debug, Clone, Default)]
pub struct HstsLayer {
    value: Option<HeaderValue>,
}

impl HstsLayer {
    /// The layer for a server: the header only when it serves TLS and `hsts.enabled` is on.
    pub fn new(tls: bool, hsts: &TlsHsts) -> HstsLayer {
        HstsLayer {
            value: (tls && hsts.enabled).then(|| header_value(hsts)),
        }
    }
}

impl<S> Layer<S> for HstsLayer {
    type Service = Hsts<S>;

    fn layer(&self, inner: S) -> Hsts<S> {
        Hsts {
            inner,
            value: self.value.clone(),
        }
    }
}

/// The service of [`HstsLayer`].
#[derive(Debug, Clone)]
pub struct Hsts<S> {
    inner: S,
    value: Option<HeaderValue>,
}

impl<S, Req, B> Service<Req> for Hsts<S>
where
    S: Service<Req, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<B>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let value = self.value.clone();
        self.inner
            .call(req)
            .map_ok(move |mut resp| {
                if let Some(v) = value {
                    resp.headers_mut().insert(STRICT_TRANSPORT_SECURITY, v);
                }
                resp
            })
            .boxed()
    }
}
