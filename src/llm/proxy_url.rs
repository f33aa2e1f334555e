//! `vibectl-server://[TOKEN@]host[:port]` URLs: parsing with exact complaints, and printing with
//! the token redacted. A complaint that quotes part of the input quotes it with anything up to
//! an `@` (where a token would be) replaced by `***`.

use std::fmt;

use crate::config::Secret;

/// The scheme of a TLS server URL.
pub const SCHEME_TLS: &str = "vibectl-server";
/// The scheme of a plaintext server URL.
pub const SCHEME_PLAIN: &str = "vibectl-server-insecure";
/// The port used when a URL names none.
pub const DEFAULT_PORT: u16 = 50051;

/// A parsed server URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error(
        "`{0}` has no scheme; expected vibectl-server://HOST[:PORT] or vibectl-server-insecure://HOST[:PORT]"
    )]
    NoScheme(String),
    #[error("the scheme `{0}` is not vibectl-server (TLS) or vibectl-server-insecure (plaintext)")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("the port `{0}` is not a number from 1 to 65535")]
    Port(String),
    #[error("the token in the URL contains whitespace")]
    TokenSpace,
    #[error("the URL has a path, query or fragment (`{0}`); only [TOKEN@]HOST[:PORT] is allowed")]
    Extra(String),
    #[error("the host `{0}` is not a name or an address; write an IPv6 address in brackets")]
    Host(String),
}

/// `text` as a complaint may quote it: everything up to its last `@` replaced by `***`.
fn quoted(text: &str) -> String {
    match text.rsplit_once('@') {
        Some((_, after)) => format!("***@{after}"),
        None => text.to_owned(),
    }
}

impl ProxyUrl {
    pub fn parse(input: &str) -> Result<ProxyUrl, UrlError> {
        let s = input.trim();
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| UrlError::NoScheme(quoted(s)))?;
        let tls = match scheme {
            SCHEME_TLS => true,
            SCHEME_PLAIN => false,
            other => return Err(UrlError::Scheme(quoted(other))),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(i) = rest.find(['/', '?', '#']) {
            return Err(UrlError::Extra(quoted(&rest[i..])));
        }
        let (token, hostport) = match rest.rsplit_once('@') {
            Some((t, h)) => (Some(t.to_owned()), h),
            None => (None, rest),
        };
        if token
            .as_deref()
            .is_some_and(|t| t.chars().any(char::is_whitespace))
        {
            return Err(UrlError::TokenSpace);
        }
        let token = token.filter(|t| !t.is_empty()).map(Secret::new);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(UrlError::NoHost)?;
            if !h.is_empty() && h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(UrlError::Host(quoted(h)));
            }
            let port = match after {
                "" => None,
                a => Some(
                    a.strip_prefix(':')
                        .ok_or_else(|| UrlError::Port(quoted(a)))?,
                ),
            };
            (h.to_owned(), port)
        } else {
            let (h, p) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            if h.contains([':', '[', ']']) {
                return Err(UrlError::Host(quoted(h)));
            }
            (h.to_owned(), p)
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|n| *n != 0)
                .ok_or_else(|| UrlError::Port(p.to_owned()))?,
        };
        Ok(ProxyUrl {
            tls,
            host,
            port,
            token,
        })
    }

    /// The URL of the gRPC endpoint (`https://host:port` or `http://host:port`).
    pub fn endpoint(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{}://{host}:{}",
            if self.tls { "https" } else { "http" },
            self.port
        )
    }

    /// The URL with the token in clear, for saving.
    pub fn to_url_with_token(&self) -> String {
        self.render(self.token.as_ref().map(Secret::expose))
    }

    fn render(&self, token: Option<&str>) -> String {
        let scheme = if self.tls { SCHEME_TLS } else { SCHEME_PLAIN };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match token {
            Some(t) => format!("{scheme}://{t}@{host}:{}", self.port),
            None => format!("{scheme}://{host}:{}", self.port),
        }
    }
}

/// Prints with the token as `***`.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(self.token.as_ref().map(|_| "***")))
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let u = ProxyUrl::parse("vibectl-server://tok.en@llm.example.com:8443").unwrap();
        assert!(u.tls && u.port == 8443 && u.token.as_ref().map(Secret::expose) == Some("tok.en"));
        assert_eq!(u.to_string(), "vibectl-server://***@llm.example.com:8443");
        assert_eq!(u.endpoint(), "https://llm.example.com:8443");
        let p = ProxyUrl::parse("vibectl-server-insecure://127.0.0.1").unwrap();
        assert!(!p.tls && p.port == DEFAULT_PORT && p.token.is_none());
        assert_eq!(
            ProxyUrl::parse("vibectl-server://[::1]:9000")
                .unwrap()
                .endpoint(),
            "https://[::1]:9000"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert_eq!(
            ProxyUrl::parse("http://h:1"),
            Err(UrlError::Scheme("http".into()))
        );
        assert_eq!(
            ProxyUrl::parse("vibectl-server://:50051"),
            Err(UrlError::NoHost)
        );
        assert_eq!(
            ProxyUrl::parse("vibectl-server://h:0"),
            Err(UrlError::Port("0".into()))
        );
        assert_eq!(
            ProxyUrl::parse("vibectl-server://h:70000"),
            Err(UrlError::Port("70000".into()))
        );
        assert_eq!(
            ProxyUrl::parse("vibectl-server://a b@h"),
            Err(UrlError::TokenSpace)
        );
        assert!(matches!(ProxyUrl::parse("h:1"), Err(UrlError::NoScheme(_))));
        assert!(matches!(
            ProxyUrl::parse("vibectl-server://h:1/x"),
            Err(UrlError::Extra(_))
        ));
    }
}
