//! Names that say "secret" (keys, env var names, flags) and values that are not secrets even
//! under such a name.

use super::Kind;
use super::placeholder;

/// Last words of a name that make its value a secret.
const SECRET_WORDS: &[&str] = &[
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "secretkey",
    "accesskey",
    "privatekey",
    "clientsecret",
];

/// Words that make a following `key` a secret (`api_key`, `secretKey`, `ACCOUNT_KEY`...).
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "secret",
    "access",
    "private",
    "signing",
    "encryption",
    "master",
    "account",
    "auth",
    "session",
    "shared",
];

/// The kind a value gets from the name it is stored under (`DB_PASSWORD`, `apiKey`,
/// `--client-secret`, `aws_secret_access_key`), or `None` when the name does not say secret.
/// The name's last word decides, so `PASSWORD_FILE`, `secretName` and `tokenSecretRef` are not
/// secrets.
pub(super) fn classify(name: &str) -> Option<Kind> {
    let words = words(name);
    let last = words.last()?.as_str();
    let prev = words.len().checked_sub(2).map_or("", |i| words[i].as_str());
    if last == "key" && prev == "access" && words.iter().any(|w| w == "secret") {
        return Some(Kind::AwsSecretKey);
    }
    if last == "secretaccesskey" {
        return Some(Kind::AwsSecretKey);
    }
    let secret = last.ends_with("password")
        || last.ends_with("passwd")
        || SECRET_WORDS.contains(&last)
        || (last == "key" && KEY_QUALIFIERS.contains(&prev));
    secret.then_some(Kind::Password)
}

/// The lowercase words of a name: split at anything not alphanumeric and at camelCase humps
/// (`dbPassword`, `APIKey` and `db-password` all end in `password` or `key`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_ascii_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether a value found under a secret-looking name is not a secret after all: empty, a
/// boolean or null, a `<...>` description, a `$(VAR)`/`${VAR}`/`$VAR` reference, a size
/// (`953 bytes`), a mask kubectl prints (`DATA+OMITTED`, `REDACTED`, `***`), a namespaced
/// object name (`secret=shop/checkout-db` in a controller's log), or a placeholder.
pub(super) fn not_a_secret(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() || v == "\"\"" || v == "''" {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true"
            | "false"
            | "yes"
            | "no"
            | "null"
            | "none"
            | "nil"
            | "~"
            | "data+omitted"
            | "redacted"
            | "[redacted]"
    ) {
        return true;
    }
    if v.starts_with('<') && v.contains('>') || v.bytes().all(|b| b == b'*') {
        return true;
    }
    if is_reference(v) || is_size(v) || is_object_ref(v) || placeholder::is_placeholder(v) {
        return true;
    }
    false
}

/// `$(VAR)`, `${VAR}` or `$VAR` (upper case): a reference resolved elsewhere, not a value.
fn is_reference(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('$') else {
        return false;
    };
    let (inner, upper_only) = match rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .or_else(|| rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')))
    {
        Some(inner) => (inner, false),
        None => (rest, true),
    };
    !inner.is_empty()
        && inner.bytes().all(|b| {
            b.is_ascii_uppercase()
                || b.is_ascii_digit()
                || b == b'_'
                || (!upper_only && (b.is_ascii_lowercase() || b == b'.'))
        })
}

/// `namespace/name` in the lower-case DNS names Kubernetes allows.
fn is_object_ref(v: &str) -> bool {
    let dns = |s: &str, dots: bool| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
            })
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    v.split_once('/')
        .is_some_and(|(ns, name)| ns.len() <= 63 && dns(ns, false) && dns(name, true))
}

/// `953 bytes`: the size `kubectl describe secret` prints instead of a value.
fn is_size(v: &str) -> bool {
    v.strip_suffix(" bytes")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a bare value looks like a generated token rather than a word: at least 8 characters
/// of token alphabet with a digit, or 16 with both cases.
pub(super) fn looks_like_token(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 8 || !b.iter().all(|&c| is_token_byte(c)) {
        return false;
    }
    let digit = b.iter().any(u8::is_ascii_digit);
    let upper = b.iter().any(u8::is_ascii_uppercase);
    let lower = b.iter().any(u8::is_ascii_lowercase);
    digit || (b.len() >= 16 && upper && lower)
}

pub(super) fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'~' | b'+' | b'/' | b'-' | b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_by_last_word() {
        for name in [
            "password",
            "DB_PASSWORD",
            "dbPassword",
            "PGPASSWORD",
            "mysql-root-password",
            "--password",
            "passwd",
            "PWD",
            "DB_PASS",
            "secret",
            "client_secret",
            "clientSecret",
            "GITHUB_TOKEN",
            "id-token",
            "api_key",
            "apiKey",
            "APIKey",
            "apikey",
            "OPENAI_API_KEY",
            "secretKey",
            "AccountKey",
            "SharedAccessKey",
            "ssh-passphrase",
        ] {
            assert_eq!(classify(name), Some(Kind::Password), "{name}");
        }
        for name in [
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "secretAccessKey",
        ] {
            assert_eq!(classify(name), Some(Kind::AwsSecretKey), "{name}");
        }
    }

    #[test]
    fn names_that_only_mention_a_secret() {
        for name in [
            "secretName",
            "SecretName",
            "tokenSecretRef",
            "passwordSecretRef",
            "secretKeyRef",
            "PASSWORD_FILE",
            "TOKEN_TTL",
            "token-file",
            "maxTokens",
            "Tokens",
            "key",
            "tls.key",
            "cache_key",
            "client-key-data",
            "AWS_ACCESS_KEY_ID",
            "bypass",
            "private_key_id",
            "TokenExpirationSeconds",
            "",
        ] {
            assert_eq!(classify(name), None, "{name}");
        }
    }

    #[test]
    fn values_that_are_not_secrets() {
        for v in [
            "",
            "  ",
            "\"\"",
            "true",
            "False",
            "null",
            "~",
            "<set to the key 'password' in secret 'db'>",
            "<set to the key 'token' of config map 'x'>  Optional: false",
            "<none>",
            "$(DB_PASSWORD)",
            "$(params.token)",
            "${REDIS_PASSWORD}",
            "$TOKEN",
            "953 bytes",
            "DATA+OMITTED",
            "REDACTED",
            "*****",
            "[REDACTED:password:3]",
            "shop/checkout-db",
        ] {
            assert!(not_a_secret(v), "{v:?}");
        }
        for v in [
            "hunter2",
            "Shop/Pa55",
            "a/b/c",
            "0",
            "12345678",
            "$ecret",
            "bytes",
            "<abc",
            "[REDACTED:password:]",
        ] {
            assert!(!not_a_secret(v), "{v:?}");
        }
    }

    #[test]
    fn token_shape() {
        assert!(looks_like_token("abc123def"));
        assert!(looks_like_token("dXNlcjpwYXNzd29yZA=="));
        assert!(looks_like_token("AbcdefghIjklmnop"));
        assert!(!looks_like_token("authentication"));
        assert!(!looks_like_token("abc1"));
        assert!(!looks_like_token("abc 123 def"));
    }
}
