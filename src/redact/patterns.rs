//! Secrets recognised by their shape or a fixed label: JWTs, bearer tokens, `Authorization`
//! values, AWS access key ids, Azure keys, credentials in URLs, kubeconfig key and certificate
//! data, base64 PEM private keys.

use std::sync::LazyLock;

use base64::Engine;
use regex::Regex;

use super::span::Span;
use super::{Kind, keys, pem};

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid built-in pattern")
}

/// Three base64url segments, the header a JSON object (`{"` is `eyJ`).
static JWT: LazyLock<Regex> =
    LazyLock::new(|| re(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"));
static AWS_ACCESS_KEY: LazyLock<Regex> = LazyLock::new(|| re(r"(?:AKIA|ASIA)[A-Z0-9]{16}"));
static BEARER: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)bearer[ \t]+([A-Za-z0-9._~+/-]+=*)"));
/// `Authorization: <scheme> <credentials>` as a header, a JSON or Go map entry, a flag value.
static AUTHORIZATION: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r#"(?i)authorization\\?["']?[ \t]*[:=][ \t]*\[?[ \t]*\\?["']?"#,
        r"(?:(basic|bearer|token|digest|negotiate|ntlm|apikey|dpop|aws4-hmac-sha256|sso-key)[ \t]+)?",
        r"([A-Za-z0-9._~+/=:-]+)"
    ))
});
static AZURE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)(?:AccountKey|SharedAccessKey|SharedAccessSignature)[ \t]*=[ \t]*([^;\s"'<>\\]+)|[?&]sig=([^&\s"'<>\\]+)"#,
    )
});
static KUBECONFIG_DATA: LazyLock<Regex> = LazyLock::new(|| {
    re(r#"(client-key-data|client-certificate-data)\\?["']?[ \t]*:[ \t]*\\?["']?([A-Za-z0-9+/=]+)"#)
});
/// Base64 of `-----BEGIN ` and the rest of the base64 run.
static BASE64_PEM: LazyLock<Regex> = LazyLock::new(|| re(r"LS0tLS1CRUdJTi[A-Za-z0-9+/]*=*"));

pub(super) fn find(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    if text.contains("eyJ") {
        for m in JWT.find_iter(text) {
            if !before_is(b, m.start(), is_b64url) && !after_is(b, m.end(), is_b64url) {
                out.push(Span::new(m.start(), m.end(), Kind::Jwt));
            }
        }
    }
    if text.contains("AKIA") || text.contains("ASIA") {
        for m in AWS_ACCESS_KEY.find_iter(text) {
            let alnum = |c: u8| c.is_ascii_alphanumeric();
            if !before_is(b, m.start(), alnum) && !after_is(b, m.end(), alnum) {
                out.push(Span::new(m.start(), m.end(), Kind::AwsAccessKey));
            }
        }
    }
    for c in BEARER.captures_iter(text) {
        let (Some(all), Some(v)) = (c.get(0), c.get(1)) else {
            continue;
        };
        if !before_is(b, all.start(), |c| c.is_ascii_alphanumeric())
            && keys::looks_like_token(v.as_str())
        {
            out.push(Span::new(v.start(), v.end(), Kind::BearerToken));
        }
    }
    for c in AUTHORIZATION.captures_iter(text) {
        let (Some(all), Some(v)) = (c.get(0), c.get(2)) else {
            continue;
        };
        let ok = if c.get(1).is_some() {
            !keys::not_a_secret(v.as_str())
        } else {
            keys::looks_like_token(v.as_str())
        };
        if ok && !before_is(b, all.start(), |c| c.is_ascii_alphanumeric()) {
            out.push(Span::new(v.start(), v.end(), Kind::AuthorizationHeader));
        }
    }
    for c in AZURE.captures_iter(text) {
        if let Some(v) = c.get(1).or_else(|| c.get(2))
            && !keys::not_a_secret(v.as_str())
        {
            out.push(Span::new(v.start(), v.end(), Kind::AzureConnectionString));
        }
    }
    if text.contains("-data") {
        for c in KUBECONFIG_DATA.captures_iter(text) {
            let (Some(k), Some(v)) = (c.get(1), c.get(2)) else {
                continue;
            };
            let kind = if k.as_str() == "client-key-data" {
                Kind::KubeconfigCredential
            } else {
                Kind::Certificate
            };
            if !keys::not_a_secret(v.as_str()) {
                out.push(Span::new(v.start(), v.end(), kind));
            }
        }
    }
    if text.contains("LS0tLS1CRUdJTi") {
        for m in BASE64_PEM.find_iter(text) {
            if !before_is(b, m.start(), |c| {
                c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
            }) && base64_private_key(m.as_str())
            {
                out.push(Span::new(m.start(), m.end(), Kind::PrivateKey));
            }
        }
    }
    url_credentials(text, out);
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn before_is(b: &[u8], i: usize, f: impl Fn(u8) -> bool) -> bool {
    i > 0 && f(b[i - 1])
}

fn after_is(b: &[u8], i: usize, f: impl Fn(u8) -> bool) -> bool {
    b.get(i).is_some_and(|&c| f(c))
}

/// Whether base64 text starting `LS0tLS1CRUdJTi` decodes to the BEGIN line of a private key
/// (a base64 certificate such as a `caBundle` is kept).
fn base64_private_key(run: &str) -> bool {
    let head = &run[..run.len().min(64) / 4 * 4];
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(head) else {
        return false;
    };
    let line = String::from_utf8_lossy(&decoded);
    let label = line
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.split("-----").next())
        .unwrap_or("");
    pem::kind_of_label(label) == Some(Kind::PrivateKey)
}

/// The password of `scheme://user:password@host`, or a token-like user with no password
/// (`https://ghp_...@github.com`).
fn url_credentials(text: &str, out: &mut Vec<Span>) {
    const MAX_USERINFO: usize = 512;
    let b = text.as_bytes();
    for (i, _) in text.match_indices("://") {
        if !before_is(b, i, |c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let from = i + 3;
        let mut at = None;
        let mut colon = None;
        for (j, &c) in b[from..].iter().enumerate().take(MAX_USERINFO) {
            match c {
                b'@' => {
                    at = Some(from + j);
                    break;
                }
                b':' if colon.is_none() => colon = Some(from + j),
                b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\' | b'`' => break,
                c if c.is_ascii_whitespace() => break,
                _ => {}
            }
        }
        let Some(at) = at else { continue };
        let (start, ok) = match colon {
            Some(c) => (c + 1, !keys::not_a_secret(&text[c + 1..at])),
            None => (
                from,
                keys::looks_like_token(&text[from..at]) && at - from >= 16,
            ),
        };
        if ok {
            out.push(Span::new(start, at, Kind::UrlCredentials));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<(&str, Kind)> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.sort_by_key(|s| (s.start, s.end, s.kind));
        out.iter()
            .map(|s| (&text[s.start..s.end], s.kind))
            .collect()
    }

    const JWT_VALUE: &str =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlLXZhbHVl";

    #[test]
    fn jwt_anywhere_but_not_inside_a_longer_word() {
        let text = format!("token={JWT_VALUE} x{JWT_VALUE}");
        assert_eq!(spans(&text), vec![(JWT_VALUE, Kind::Jwt)]);
    }

    #[test]
    fn bearer_and_authorization_keep_the_scheme() {
        let text = format!(
            "curl -H 'Authorization: Bearer {JWT_VALUE}'\nAuthorization: Basic dXNlcjpwYXNz\n\
             map[Authorization:[token ghp_abc123] Accept:[*/*]]\n\"authorization\": \"sk-live-123456789\""
        );
        assert_eq!(
            spans(&text),
            vec![
                (JWT_VALUE, Kind::BearerToken),
                (JWT_VALUE, Kind::Jwt),
                (JWT_VALUE, Kind::AuthorizationHeader),
                ("dXNlcjpwYXNz", Kind::AuthorizationHeader),
                ("ghp_abc123", Kind::AuthorizationHeader),
                ("sk-live-123456789", Kind::AuthorizationHeader),
            ]
        );
    }

    #[test]
    fn prose_about_bearer_tokens_and_authorization_is_kept() {
        let text = "description: Bearer token file to read. authorization: required\n\
                    --authorization-mode=Node,RBAC\nauthorization:\n  mode: Webhook\n\
                    authorization: {credentials: {key: token}}";
        assert_eq!(spans(text), vec![]);
    }

    #[test]
    fn aws_access_key_ids_with_boundaries() {
        let text =
            "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE ASIAY34FZKBOKMUTVV7A XAKIAIOSFODNN7EXAMPLE";
        assert_eq!(
            spans(text),
            vec![
                ("AKIAIOSFODNN7EXAMPLE", Kind::AwsAccessKey),
                ("ASIAY34FZKBOKMUTVV7A", Kind::AwsAccessKey)
            ]
        );
    }

    #[test]
    fn azure_keys_only() {
        let text = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFy+/==;EndpointSuffix=core.windows.net\n\
                    Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=c2VjcmV0=\n\
                    https://acct.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig=abc%2Bdef%3D&se=2025";
        assert_eq!(
            spans(text),
            vec![
                ("Zm9vYmFy+/==", Kind::AzureConnectionString),
                ("c2VjcmV0=", Kind::AzureConnectionString),
                ("abc%2Bdef%3D", Kind::AzureConnectionString),
            ]
        );
    }

    #[test]
    fn kubeconfig_data_but_not_omitted_or_authority_data() {
        let text = "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n    \
                    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n    \
                    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==\n    \
                    client-key-data: DATA+OMITTED\n";
        assert_eq!(
            spans(text),
            vec![
                ("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t", Kind::Certificate),
                (
                    "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==",
                    Kind::PrivateKey
                ),
                (
                    "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==",
                    Kind::KubeconfigCredential
                ),
            ]
        );
    }

    #[test]
    fn base64_private_keys_but_not_base64_certificates() {
        let text = "tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2\n\
                    caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=\n";
        assert_eq!(
            spans(text),
            vec![(
                "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2",
                Kind::PrivateKey
            )]
        );
    }

    #[test]
    fn url_passwords_and_token_users() {
        let text = "postgres://app:s3cr3t@db:5432/app redis://:pw@redis ssh://git@github.com \
                    https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r \
                    mysql://root:$(MYSQL_PASSWORD)@db https://example.com/a@b";
        assert_eq!(
            spans(text),
            vec![
                ("s3cr3t", Kind::UrlCredentials),
                ("pw", Kind::UrlCredentials),
                (
                    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
                    Kind::UrlCredentials
                ),
            ]
        );
    }
}
