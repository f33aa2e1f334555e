//! JWT authentication: the secret lookup, minting tokens, and verifying them on every RPC.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::generated::server::{Jwt, key};
use crate::config::{Secret, store};

/// Env var holding the JWT secret itself.
pub const ENV_SECRET: &str = "VIBECTL_JWT_SECRET";
/// Env var naming a file that holds the JWT secret.
pub const ENV_SECRET_FILE: &str = "VIBECTL_JWT_SECRET_FILE";
/// The file, in the server config directory, where a generated secret is kept.
pub const GENERATED_SECRET_FILE: &str = "jwt-secret";
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 30;
/// Most tokens a [`Verifier`] remembers as verified; the memory is emptied when it is full.
const VERIFIED_CACHE_CAP: usize = 4096;

/// The claims of a vibectl token (the same set vibectl 0.11.6 writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default)]
    pub jti: Option<String>,
    /// Not valid before this time (vibectl does not write it; other minting tools may).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no authorization metadata; send `authorization: Bearer <token>`")]
    Missing,
    #[error("the authorization metadata is not `Bearer <token>`")]
    Scheme,
    #[error("the token was refused: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the token has no exp claim, and {} is off", key::JWT_ALLOW_NO_EXPIRY)]
    NoExpiry,
    #[error("the token has been revoked")]
    Revoked,
    #[error("cannot read the JWT secret from {}: {source}", path.display())]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the JWT secret in {origin} is empty")]
    EmptySecret { origin: String },
    #[error("cannot save a generated JWT secret: {0}")]
    Persist(String),
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

/// Where the secret in use came from, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    Env(&'static str),
    EnvFile(PathBuf),
    Config(&'static str),
    ConfigFile(PathBuf),
    Generated(PathBuf),
}

impl std::fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretOrigin::Env(v) => write!(f, "env {v}"),
            SecretOrigin::EnvFile(p) => write!(f, "file {} (from {ENV_SECRET_FILE})", p.display()),
            SecretOrigin::Config(k) => write!(f, "config key {k}"),
            SecretOrigin::ConfigFile(p) => write!(
                f,
                "file {} (from {})",
                p.display(),
                key::JWT_SECRET_KEY_FILE
            ),
            SecretOrigin::Generated(p) => write!(f, "generated file {}", p.display()),
        }
    }
}

fn read_secret(path: &Path) -> Result<String, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::SecretFile {
        path: path.to_owned(),
        source,
    })?;
    let s = text.trim().to_owned();
    if s.is_empty() {
        return Err(AuthError::EmptySecret {
            origin: path.display().to_string(),
        });
    }
    Ok(s)
}

/// The secret, by the contract's order: `VIBECTL_JWT_SECRET`, the file at
/// `VIBECTL_JWT_SECRET_FILE`, `jwt.secret_key`, the file at `jwt.secret_key_file`, else a
/// generated one kept (0600) in `dir`.
pub fn resolve_secret(
    jwt: &Jwt,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Secret, SecretOrigin), AuthError> {
    if let Some(s) = env(ENV_SECRET).filter(|s| !s.is_empty()) {
        return Ok((Secret::new(s), SecretOrigin::Env(ENV_SECRET)));
    }
    if let Some(p) = env(ENV_SECRET_FILE).filter(|s| !s.is_empty()) {
        let p = PathBuf::from(p);
        return Ok((Secret::new(read_secret(&p)?), SecretOrigin::EnvFile(p)));
    }
    if let Some(s) = jwt.secret_key.as_ref().filter(|s| !s.expose().is_empty()) {
        return Ok((s.clone(), SecretOrigin::Config(key::JWT_SECRET_KEY)));
    }
    if let Some(p) = &jwt.secret_key_file {
        return Ok((
            Secret::new(read_secret(p)?),
            SecretOrigin::ConfigFile(p.clone()),
        ));
    }
    let path = dir.join(GENERATED_SECRET_FILE);
    if path.exists() {
        return Ok((
            Secret::new(read_secret(&path)?),
            SecretOrigin::Generated(path),
        ));
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let secret = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    store::write_atomic(&path, &format!("{secret}\n"), true)
        .map_err(|e| AuthError::Persist(e.to_string()))?;
    Ok((Secret::new(secret), SecretOrigin::Generated(path)))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A signed HS256 token for `sub`, valid for `ttl` (no `exp` when `None`).
pub fn mint(
    secret: &Secret,
    issuer: &str,
    sub: &str,
    ttl: Option<Duration>,
) -> Result<String, AuthError> {
    let iat = now_secs();
    let claims = Claims {
        sub: sub.to_owned(),
        iss: issuer.to_owned(),
        iat,
        exp: ttl.map(|d| iat.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        jti: Some(uuid::Uuid::new_v4().to_string()),
        nbf: None,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
    .map_err(|e| AuthError::Sign(e.to_string()))
}

/// The longest token lifetime, in days (100 years, the most `jwt.expiration_days` allows).
pub const MAX_TOKEN_DAYS: u64 = 36_500;

/// Parse `30d`, `6m` (= 180 days), `1y` (= 365 days), `12h`, `2w`, or a bare number of days;
/// at most [`MAX_TOKEN_DAYS`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "d"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30d, 12h, 2w, 6m or 1y"))?;
    if n == 0 {
        return Err(format!("`{text}` is zero; a token must live a while"));
    }
    let hours_per = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        "m" => 24 * 30,
        "y" => 24 * 365,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}` (use h, d, w, m or y)"
            ));
        }
    };
    match n.checked_mul(hours_per) {
        Some(hours) if hours <= MAX_TOKEN_DAYS * 24 => Ok(Duration::from_secs(hours * 3600)),
        _ => Err(format!(
            "`{text}` is longer than the longest token lifetime, {MAX_TOKEN_DAYS} days"
        )),
    }
}

/// Checks tokens against the secret, issuer, expiry rule and revocation lists.
///
/// A token that passed is remembered (by its exact text, signature included) with its claims,
/// so the next call with it costs a hash lookup and an expiry check instead of an HMAC and a
/// JSON parse. That is sound because everything else checked is fixed for the life of the
/// verifier: the secret, issuer and revocation lists come from the config, and a reload builds
/// a new verifier with an empty memory. Refused tokens are not remembered.
pub struct Verifier {
    key: DecodingKey,
    with_exp: Validation,
    without_exp: Option<Validation>,
    revoked_jtis: HashSet<String>,
    revoked_subs: HashSet<String>,
    verified: Mutex<HashMap<Box<str>, Claims>>,
}

impl Verifier {
    pub fn new(secret: &Secret, jwt: &Jwt) -> Verifier {
        let mut with_exp = Validation::new(Algorithm::HS256);
        with_exp.set_issuer(&[&jwt.issuer]);
        with_exp.set_required_spec_claims(&["exp", "iss", "sub"]);
        with_exp.leeway = LEEWAY_SECS;
        with_exp.validate_nbf = true;
        let without_exp = jwt.allow_no_expiry.then(|| {
            let mut v = with_exp.clone();
            v.set_required_spec_claims(&["iss", "sub"]);
            v.validate_exp = false;
            v
        });
        Verifier {
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
            with_exp,
            without_exp,
            revoked_jtis: jwt.revoked_jtis.iter().cloned().collect(),
            revoked_subs: jwt.revoked_subs.iter().cloned().collect(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Verify a raw `authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Claims, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(AuthError::Scheme)?
            .trim();
        self.verify(token)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(token, now_secs())
    }

    /// [`Verifier::verify`] with the clock at `now` for remembered tokens.
    fn verify_at(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(claims) = verified.get(token) {
            if claims
                .exp
                .is_some_and(|exp| exp.saturating_add(LEEWAY_SECS as i64) < now)
            {
                verified.remove(token);
                return Err(AuthError::Expired);
            }
            return Ok(claims.clone());
        }
        drop(verified);
        let claims = self.verify_uncached(token, now)?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_CACHE_CAP {
            verified.clear();
        }
        verified.insert(token.into(), claims.clone());
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let map = |e: jsonwebtoken::errors::Error| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::MissingRequiredClaim(c) if c == "exp" => AuthError::NoExpiry,
            _ => AuthError::Invalid(e.to_string()),
        };
        let claims = match jsonwebtoken::decode::<Claims>(token, &self.key, &self.with_exp) {
            Ok(data) => data.claims,
            Err(e) => match (&self.without_exp, e.kind()) {
                (Some(v), jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(c))
                    if c == "exp" =>
                {
                    jsonwebtoken::decode::<Claims>(token, &self.key, v)
                        .map_err(map)?
                        .claims
                }
                _ => return Err(map(e)),
            },
        };
        let latest = now.saturating_add(LEEWAY_SECS as i64);
        if claims.nbf.is_some_and(|nbf| nbf > latest) {
            return Err(AuthError::NotYetValid);
        }
        if claims.iat > latest {
            return Err(AuthError::Invalid(
                "the token was issued in the future".into(),
            ));
        }
        if self.revoked_subs.contains(&claims.sub)
            || claims
                .jti
                .as_ref()
                .is_some_and(|j| self.revoked_jtis.contains(j))
        {
            return Err(AuthError::Revoked);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> Jwt {
        Jwt {
            enabled: true,
            ..Jwt::default()
        }
    }

    #[test]
    fn minted_tokens_verify_and_carry_the_claims() {
        let secret = Secret::new("s3cret");
        let token = mint(
            &secret,
            "vibectl-server",
            "alice",
            Some(Duration::from_secs(60)),
        )
        .unwrap();
        let claims = Verifier::new(&secret, &jwt()).verify(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert!(claims.exp.is_some() && claims.jti.is_some());
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_changed_one_is_checked_again() {
        let secret = Secret::new("s3cret");
        let token = mint(
            &secret,
            "vibectl-server",
            "carol",
            Some(Duration::from_secs(60)),
        )
        .unwrap();
        let verifier = Verifier::new(&secret, &jwt());
        let claims = verifier.verify(&token).unwrap();
        assert_eq!(verifier.verify(&token).unwrap(), claims, "remembered");
        let later = now_secs() + 60 + LEEWAY_SECS as i64 + 1;
        assert!(matches!(
            verifier.verify_at(&token, later),
            Err(AuthError::Expired)
        ));
        // Another signature: change a character in its middle (the last one carries padding bits).
        let at = token.len() - 10;
        let swap = if token.as_bytes()[at] == b'A' {
            "B"
        } else {
            "A"
        };
        let forged = format!("{}{swap}{}", &token[..at], &token[at + 1..]);
        assert!(matches!(
            verifier.verify(&forged),
            Err(AuthError::Invalid(_))
        ));
        let other = Verifier::new(&Secret::new("another"), &jwt());
        assert!(
            other.verify(&token).is_err(),
            "each verifier remembers its own"
        );
    }

    #[test]
    fn tokens_without_exp_need_the_opt_in() {
        let secret = Secret::new("s3cret");
        let token = mint(&secret, "vibectl-server", "bob", None).unwrap();
        assert!(matches!(
            Verifier::new(&secret, &jwt()).verify(&token),
            Err(AuthError::NoExpiry)
        ));
        let open = Jwt {
            allow_no_expiry: true,
            ..jwt()
        };
        assert_eq!(
            Verifier::new(&secret, &open).verify(&token).unwrap().sub,
            "bob"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            parse_duration("6m").unwrap(),
            Duration::from_secs(180 * 86400)
        );
        assert_eq!(
            parse_duration("1y").unwrap(),
            Duration::from_secs(365 * 86400)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("").is_err());
    }
}
