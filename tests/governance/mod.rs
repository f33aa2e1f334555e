//! Governance end to end: the wiring of `serve`
//! ([`crate::support::server::TestServer`]) served from a config file on
//! `127.0.0.1:0`, with its governance, metrics endpoint and config watcher, providers pointed
//! at the mock provider process.
//!
//! - [`limits`]: rate, concurrency, input length and timeout limits, per token subject; bad
//!   limit values refused by `serve`.
//! - [`reload`]: config edits applied while serving; bad edits refused.
//! - [`metrics`]: `/metrics` parsed as Prometheus text; `/healthz`, `/readyz`.
//! - [`usage`]: the usage log, quotas, and `vibectl-server usage`.
//! - [`redis`]: replicas sharing limits through Redis; the failure modes.
//! - [`serve`]: the `serve` command: its flags, metrics, usage log and SIGHUP.

mod limits;
mod metrics;
pub(crate) mod redis;
mod reload;
mod serve;
mod startup;
mod usage;

use tonic::{Code, Status};
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;
use vibectl::server::governance::{LIMIT_TYPE_HEADER, RETRY_AFTER_HEADER};

use crate::support::mock::MockProvider;
use crate::support::server::{MODEL, UPSTREAM_MODEL};
use crate::support::yaml::{self, entry};

/// A config file serving [`MODEL`] (priced) from the mock, with `limits` (YAML nested under
/// `server.limits`, as [`limits`] writes it) and `extra` (top-level YAML) added.
pub fn config_text(mock: &MockProvider, limits: &str, extra: &str) -> String {
    let limits: String = limits.lines().map(|l| format!("    {l}\n")).collect();
    let p = |k: &str| entry(k, "mock");
    let m = |k: &str| entry(k, MODEL);
    let rest = yaml::config(&[
        (p(key::PROVIDERS_PROVIDER_KIND), "openai".to_owned()),
        (p(key::PROVIDERS_PROVIDER_KEY), "test-key".to_owned()),
        (
            p(key::PROVIDERS_PROVIDER_BASE_URL),
            mock.base_url(ProviderKind::OpenAi),
        ),
        (p(key::PROVIDERS_PROVIDER_MAX_RETRIES), "0".to_owned()),
        (m(key::MODELS_ID_PROVIDER), "mock".to_owned()),
        (m(key::MODELS_ID_UPSTREAM_MODEL), UPSTREAM_MODEL.to_owned()),
        (
            m(key::MODELS_ID_INPUT_COST_PER_MTOK),
            format!("{INPUT_COST:?}"),
        ),
        (
            m(key::MODELS_ID_OUTPUT_COST_PER_MTOK),
            format!("{OUTPUT_COST:?}"),
        ),
    ]);
    format!("server:\n  default_model: {MODEL}\n  limits:\n{limits}{rest}{extra}")
}

/// The price of [`MODEL`] in [`config_text`], in US dollars per million tokens.
pub const INPUT_COST: f64 = 3.0;
pub const OUTPUT_COST: f64 = 15.0;

/// The `server.limits` YAML of `pairs` (dotted keys under `server.limits`, values as YAML), as
/// [`config_text`] takes it.
pub fn limits<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let text = yaml::config(pairs);
    let body = text
        .strip_prefix("server:\n  limits:\n")
        .unwrap_or_else(|| panic!("not all keys are under server.limits:\n{text}"));
    body.lines()
        .map(|l| {
            l.strip_prefix("    ")
                .expect("indented under server.limits")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The limit type and retry hint of a RESOURCE_EXHAUSTED refusal; panics on any other status.
pub fn refusal(status: &Status) -> (String, Option<u64>) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let md = status.metadata();
    let limit = md
        .get(LIMIT_TYPE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no limit-type metadata: {status:?}"))
        .to_owned();
    let retry = md.get(RETRY_AFTER_HEADER).map(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("integer retry-after-ms")
    });
    (limit, retry)
}

/// A user text that makes the mock stream `chunks` chunks, holding the stream in flight after
/// the first until [`MockProvider::release`].
pub fn held(chunks: u32) -> String {
    format!("[[mock:chunks={chunks},gate=1]] hello")
}

/// A user text that makes the mock stream one chunk and then hold the stream open until the
/// client goes away.
pub fn stuck() -> String {
    "[[mock:chunks=4,hold_after=1]] hello".to_owned()
}
