//! The OpenAI-compatible HTTP API on the gRPC port: the official `openai` SDK (Python peer
//! venv, `scripts/interop/openai_sdk.py`) and raw HTTP requests against a server on the mock.

mod anthropic;
mod bad_input;
mod sdk;
mod tls;
mod tools;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vibectl::config::Secret;
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;
use vibectl::server::governance::USAGE_FILE;
use vibectl::server::{Governance, auth};

use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, PROVIDER, TestServer, config_pairs, from_yaml, set};
use crate::support::yaml::{self, entry};

/// The JWT secret of the test servers that have auth on.
pub const SECRET: &str = "http-api-test-secret";

/// A server on the mock (the fixture runs `serve`'s wiring: its usage log is in its config
/// directory).
pub struct Served {
    pub server: TestServer,
    pub gov: Arc<Governance>,
    pub usage_file: PathBuf,
}

impl Served {
    /// The default test config with `extra` keys set (and auth on when `auth`).
    pub async fn start(mock: &MockProvider, auth: bool, extra: &[(&str, &str)]) -> Served {
        let mut pairs = config_pairs(mock);
        if auth {
            set(&mut pairs, key::JWT_ENABLED, "true");
            set(&mut pairs, key::JWT_SECRET_KEY, SECRET);
        }
        for (k, v) in extra {
            set(&mut pairs, k, v);
        }
        let server = TestServer::start(from_yaml(&yaml::config(&pairs))).await;
        Served {
            gov: server.gov.clone(),
            usage_file: server.dir.path().join(USAGE_FILE),
            server,
        }
    }

    /// The default test config (auth on when `auth`) with its provider speaking `kind`: the
    /// mock's endpoint for that format.
    pub async fn start_on(mock: &MockProvider, kind: ProviderKind, auth: bool) -> Served {
        let kind_key = entry(key::PROVIDERS_PROVIDER_KIND, PROVIDER);
        let base_key = entry(key::PROVIDERS_PROVIDER_BASE_URL, PROVIDER);
        let base = mock.base_url(kind);
        Served::start(
            mock,
            auth,
            &[
                (kind_key.as_str(), kind.as_str()),
                (base_key.as_str(), base.as_str()),
            ],
        )
        .await
    }

    /// `http://ADDR/v1`, the base URL the OpenAI SDKs take.
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.server.addr)
    }

    /// The usage records written so far.
    pub fn usage(&self) -> Vec<Value> {
        self.gov.usage.flush();
        std::fs::read_to_string(&self.usage_file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a usage record is JSON"))
            .collect()
    }

    /// Wait (bounded) until the metrics text contains `needle`.
    pub async fn wait_for_metric(&self, needle: &str) {
        crate::support::wait::until(
            &format!("the metrics showing {needle}"),
            LIMIT,
            async || {
                let text = self.gov.metrics.encode();
                if text.contains(needle) {
                    Ok(())
                } else {
                    Err(text)
                }
            },
        )
        .await;
    }
}

/// A token of `sub` signed with [`SECRET`].
pub fn token(sub: &str) -> String {
    auth::mint(
        &Secret::new(SECRET),
        "vibectl-server",
        sub,
        Some(Duration::from_secs(600)),
    )
    .expect("mint")
}
