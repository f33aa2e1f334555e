//! What a reload changes in authentication, token revocations and limits, and which of those
//! changes weaken the running server: turning auth off or accepting tokens without expiry,
//! taking a subject or jti off a revocation list, raising or removing a limit (global, or the
//! effective one of a per-token subject), opening the Redis failure mode, moving the counters
//! (backend or Redis URL, which starts them afresh), or turning on
//! `server.reload_allow_weakening` itself. [`reload`](super::reload) refuses the weakening
//! ones on a server bound to anything but loopback and logs every accepted one.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::config::generated::server::{
    GlobalLimits, ServerLimitsRedisFailureMode, TokenLimits, key,
};
use crate::config::{KeyPath, ServerConfig};

/// One changed key of auth, revocations or limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The dotted key; a per-token limit names its subject.
    pub key: String,
    /// What changed, without secret values (`true -> false`, `removed alice`).
    pub detail: String,
    /// Whether the change weakens the server.
    pub weakens: bool,
}

/// Whether a server bound to `bound` can be reached from other machines; with no address known
/// it is assumed so.
pub fn exposed(bound: &[SocketAddr]) -> bool {
    bound.is_empty() || bound.iter().any(|a| !a.ip().is_loopback())
}

/// Every change of auth, revocation and limit keys from `old` to `new`, in key order.
pub fn changes(old: &ServerConfig, new: &ServerConfig) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |key: &str, detail: String, weakens: bool| {
        out.push(Change {
            key: key.to_owned(),
            detail,
            weakens,
        });
    };
    let flag = |o: bool, n: bool| format!("{o} -> {n}");
    let (oj, nj) = (&old.jwt, &new.jwt);
    if oj.enabled != nj.enabled {
        push(key::JWT_ENABLED, flag(oj.enabled, nj.enabled), oj.enabled);
    }
    if oj.allow_no_expiry != nj.allow_no_expiry {
        let detail = flag(oj.allow_no_expiry, nj.allow_no_expiry);
        push(key::JWT_ALLOW_NO_EXPIRY, detail, nj.allow_no_expiry);
    }
    for (k, o, n) in [
        (key::JWT_REVOKED_SUBS, &oj.revoked_subs, &nj.revoked_subs),
        (key::JWT_REVOKED_JTIS, &oj.revoked_jtis, &nj.revoked_jtis),
    ] {
        let (o, n): (BTreeSet<_>, BTreeSet<_>) = (o.iter().collect(), n.iter().collect());
        let removed: Vec<&str> = o.difference(&n).map(|s| s.as_str()).collect();
        let added: Vec<&str> = n.difference(&o).map(|s| s.as_str()).collect();
        let mut detail = Vec::new();
        if !removed.is_empty() {
            detail.push(format!("removed {}", removed.join(", ")));
        }
        if !added.is_empty() {
            detail.push(format!("added {}", added.join(", ")));
        }
        if !detail.is_empty() {
            push(k, detail.join("; "), !removed.is_empty());
        }
    }
    let secret = |j: &crate::config::generated::server::Jwt| {
        (j.secret_key.clone(), j.secret_key_file.clone())
    };
    if secret(oj) != secret(nj) {
        push(
            key::JWT_SECRET_KEY,
            "the token secret changed".to_owned(),
            false,
        );
    }
    if oj.issuer != nj.issuer {
        push(
            key::JWT_ISSUER,
            format!("{} -> {}", oj.issuer, nj.issuer),
            false,
        );
    }
    limit_changes(old, new, &mut push);
    let (ol, nl) = (&old.server.limits, &new.server.limits);
    if ol.backend != nl.backend {
        let detail = format!("{} -> {}", ol.backend.as_str(), nl.backend.as_str());
        push(key::SERVER_LIMITS_BACKEND, detail, true);
    }
    if ol.redis_url != nl.redis_url {
        // The URL may hold a password: say only that it changed.
        push(key::SERVER_LIMITS_REDIS_URL, "changed".to_owned(), true);
    }
    if ol.redis_failure_mode != nl.redis_failure_mode {
        let detail = format!(
            "{} -> {}",
            ol.redis_failure_mode.as_str(),
            nl.redis_failure_mode.as_str()
        );
        let opens = nl.redis_failure_mode == ServerLimitsRedisFailureMode::Open;
        push(key::SERVER_LIMITS_REDIS_FAILURE_MODE, detail, opens);
    }
    if ol.lease_seconds != nl.lease_seconds {
        let detail = format!("{} -> {}", ol.lease_seconds, nl.lease_seconds);
        push(key::SERVER_LIMITS_LEASE_SECONDS, detail, false);
    }
    let (ow, nw) = (
        old.server.reload_allow_weakening,
        new.server.reload_allow_weakening,
    );
    if ow != nw {
        push(key::SERVER_RELOAD_ALLOW_WEAKENING, flag(ow, nw), nw);
    }
    out
}

/// The limits in a fixed order, as numbers for comparing: the global key, the per-token key
/// template, and the value (`None`: not limited).
type Limit = (&'static str, &'static str, Option<f64>);

fn global_limits(g: &GlobalLimits) -> [Limit; 7] {
    let n = |v: Option<i64>| v.map(|v| v as f64);
    [
        (
            key::SERVER_LIMITS_GLOBAL_MAX_REQUESTS_PER_MINUTE,
            key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_REQUESTS_PER_MINUTE,
            n(g.max_requests_per_minute),
        ),
        (
            key::SERVER_LIMITS_GLOBAL_MAX_CONCURRENT_REQUESTS,
            key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_CONCURRENT_REQUESTS,
            n(g.max_concurrent_requests),
        ),
        (
            key::SERVER_LIMITS_GLOBAL_MAX_INPUT_LENGTH,
            key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_INPUT_LENGTH,
            n(g.max_input_length),
        ),
        (
            key::SERVER_LIMITS_GLOBAL_REQUEST_TIMEOUT_SECONDS,
            key::SERVER_LIMITS_PER_TOKEN_SUB_REQUEST_TIMEOUT_SECONDS,
            n(g.request_timeout_seconds),
        ),
        (
            key::SERVER_LIMITS_GLOBAL_MAX_TOKENS_PER_DAY,
            key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_TOKENS_PER_DAY,
            n(g.max_tokens_per_day),
        ),
        (
            key::SERVER_LIMITS_GLOBAL_MAX_TOKENS_PER_MONTH,
            key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_TOKENS_PER_MONTH,
            n(g.max_tokens_per_month),
        ),
        (
            key::SERVER_LIMITS_GLOBAL_MAX_COST_USD_PER_MONTH,
            key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_COST_USD_PER_MONTH,
            g.max_cost_usd_per_month,
        ),
    ]
}

/// A subject's own values, in the order of [`global_limits`].
fn token_limits(t: Option<&TokenLimits>) -> [Option<f64>; 7] {
    let Some(t) = t else {
        return [None; 7];
    };
    let n = |v: Option<i64>| v.map(|v| v as f64);
    [
        n(t.max_requests_per_minute),
        n(t.max_concurrent_requests),
        n(t.max_input_length),
        n(t.request_timeout_seconds),
        n(t.max_tokens_per_day),
        n(t.max_tokens_per_month),
        t.max_cost_usd_per_month,
    ]
}

fn looser(old: Option<f64>, new: Option<f64>) -> bool {
    match (old, new) {
        (Some(_), None) => true,
        (Some(o), Some(n)) => n > o,
        (None, _) => false,
    }
}

fn shown(v: Option<f64>) -> String {
    v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string())
}

/// Changed global limits, and per-token values whose change moves a subject's effective limit.
fn limit_changes(
    old: &ServerConfig,
    new: &ServerConfig,
    push: &mut impl FnMut(&str, String, bool),
) {
    let (ol, nl) = (&old.server.limits, &new.server.limits);
    let (og, ng) = (global_limits(&ol.global), global_limits(&nl.global));
    for ((k, _, o), (_, _, n)) in og.iter().zip(&ng) {
        if o != n {
            push(k, format!("{} -> {}", shown(*o), shown(*n)), looser(*o, *n));
        }
    }
    let subs: BTreeSet<&String> = ol.per_token.keys().chain(nl.per_token.keys()).collect();
    for sub in subs {
        let ot = token_limits(ol.per_token.get(sub));
        let nt = token_limits(nl.per_token.get(sub));
        for i in 0..ot.len() {
            if ot[i] == nt[i] {
                continue;
            }
            let (o, n) = (ot[i].or(og[i].2), nt[i].or(ng[i].2));
            let key = KeyPath::fill(og[i].1, &[sub.as_str()]).to_string();
            push(&key, format!("{} -> {}", shown(o), shown(n)), looser(o, n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(c: &[Change]) -> Vec<(&str, bool)> {
        c.iter().map(|c| (c.key.as_str(), c.weakens)).collect()
    }

    #[test]
    fn loopback_only_binds_are_not_exposed() {
        let at = |s: &str| vec![s.parse::<SocketAddr>().expect("address")];
        assert!(!exposed(&at("127.0.0.1:1")));
        assert!(!exposed(&at("[::1]:1")));
        assert!(exposed(&at("0.0.0.0:1")));
        assert!(exposed(&at("10.1.2.3:1")));
        assert!(exposed(&[]));
    }

    #[test]
    fn removing_a_revocation_or_turning_auth_off_weakens_and_adding_one_does_not() {
        let mut old = ServerConfig::default();
        old.jwt.enabled = true;
        old.jwt.revoked_subs = vec!["mallory".into()];
        let mut new = old.clone();
        new.jwt.revoked_subs = vec!["eve".into()];
        new.jwt.revoked_jtis = vec!["j1".into()];
        let c = changes(&old, &new);
        assert_eq!(
            keys(&c),
            [
                (key::JWT_REVOKED_SUBS, true),
                (key::JWT_REVOKED_JTIS, false)
            ]
        );
        assert_eq!(c[0].detail, "removed mallory; added eve");
        new = old.clone();
        new.jwt.enabled = false;
        assert_eq!(keys(&changes(&old, &new)), [(key::JWT_ENABLED, true)]);
        assert_eq!(keys(&changes(&new, &old)), [(key::JWT_ENABLED, false)]);
    }

    #[test]
    fn raising_or_removing_a_limit_weakens_and_lowering_one_does_not() {
        let mut old = ServerConfig::default();
        old.server.limits.global.max_requests_per_minute = Some(10);
        old.server.limits.per_token.insert(
            "alice".into(),
            TokenLimits {
                max_tokens_per_day: Some(100),
                ..TokenLimits::default()
            },
        );
        let mut new = old.clone();
        new.server.limits.global.max_requests_per_minute = Some(5);
        assert_eq!(
            keys(&changes(&old, &new)),
            [(key::SERVER_LIMITS_GLOBAL_MAX_REQUESTS_PER_MINUTE, false)]
        );
        new.server.limits.global.max_requests_per_minute = None;
        assert!(changes(&old, &new)[0].weakens);
        new = old.clone();
        new.server.limits.per_token.clear();
        let alice = KeyPath::fill(
            key::SERVER_LIMITS_PER_TOKEN_SUB_MAX_TOKENS_PER_DAY,
            &["alice"],
        )
        .to_string();
        assert_eq!(keys(&changes(&old, &new)), [(alice.as_str(), true)]);
        new.server.limits.redis_failure_mode = ServerLimitsRedisFailureMode::Open;
        assert!(changes(&old, &new).iter().all(|c| c.weakens));
    }
}
