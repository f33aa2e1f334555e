//! Governance end to end: a real `vibectl::server::run` served from a config file on
//! `127.0.0.1:0`, with its [`Governance`], metrics endpoint and config watcher, providers
//! pointed at the mock provider process.
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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tempfile::TempDir;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::server::governance::{LIMIT_TYPE_HEADER, RETRY_AFTER_HEADER, USAGE_FILE};
use vibectl::server::reload as config_reload;
use vibectl::server::{Governance, RunOptions, ServerError, State};

use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, MODEL, UPSTREAM_MODEL, no_env, within};
use crate::support::yaml::{self, entry};

/// How often the test servers look at their config file.
const POLL: Duration = Duration::from_millis(50);

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

/// A server run from a config file, with its metrics endpoint and config watcher.
pub struct Served {
    /// Where clients connect: always on 127.0.0.1.
    pub addr: SocketAddr,
    /// The address the server is bound to (`0.0.0.0:PORT` for [`Served::start_on`] an open one).
    pub bound: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub file: PathBuf,
    pub dir: TempDir,
    pub state: Arc<ArcSwap<State>>,
    pub gov: Arc<Governance>,
    stop_server: CancellationToken,
    stop_rest: CancellationToken,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Served {
    /// Serve `text` on 127.0.0.1.
    pub async fn start(text: &str) -> Served {
        Served::start_on(text, "127.0.0.1:0").await
    }

    /// Serve `text` bound to `bind` (`0.0.0.0:0` makes a server that counts as exposed to the
    /// network; the tests still reach it through 127.0.0.1 only).
    pub async fn start_on(text: &str, bind: &str) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, text).expect("write config");
        let cfg = config_reload::load(&file, &[], &no_env)
            .unwrap_or_else(|p| panic!("the test config does not load: {p:?}"));
        let state = State::build(cfg, dir.path(), &no_env)
            .unwrap_or_else(|p| panic!("the test config does not build: {p:?}"));
        let state = Arc::new(ArcSwap::from_pointee(state));
        let gov = Arc::new(Governance::new(Some(dir.path().join(USAGE_FILE))));
        let stop_server = CancellationToken::new();
        let stop_rest = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind(bind).await.expect("bind");
        let bound = listener.local_addr().expect("addr");
        let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let metrics_addr = metrics.local_addr().expect("addr");
        tokio::spawn(vibectl::server::governance::metrics::serve(
            gov.clone(),
            metrics,
            stop_rest.clone().cancelled_owned(),
        ));
        tokio::spawn(config_reload::watch(
            config_reload::Watch {
                file: file.clone(),
                overrides: Vec::new(),
                env: Arc::new(no_env),
                state: state.clone(),
                gov: gov.clone(),
                bound: vec![bound],
                interval: POLL,
                nudge: Arc::new(Notify::new()),
            },
            stop_rest.clone(),
        ));
        let options = RunOptions {
            governance: Some(gov.clone()),
            drain_deadline: Duration::from_secs(2),
            ..RunOptions::default()
        };
        let task = tokio::spawn(vibectl::server::run(
            state.clone(),
            listener,
            stop_server.clone().cancelled_owned(),
            options,
        ));
        Served {
            addr,
            bound,
            metrics_addr,
            file,
            dir,
            state,
            gov,
            stop_server,
            stop_rest,
            task: Some(task),
        }
    }

    pub async fn client(&self) -> VibectlLlmProxyClient<Channel> {
        let channel = within(
            "connecting",
            Endpoint::from_shared(format!("http://{}", self.addr))
                .expect("endpoint")
                .connect(),
        )
        .await
        .expect("connect");
        VibectlLlmProxyClient::new(channel)
    }

    /// Poll /metrics (the registry) until a sample line reads exactly `sample`, e.g.
    /// `vibectl_config_reloads_total{result="ok"} 1`; panics after [`LIMIT`].
    pub async fn wait_for_metric(&self, sample: &str) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let text = self.gov.metrics.encode();
            if text.lines().any(|l| l == sample) {
                return;
            }
            assert!(Instant::now() < deadline, "no `{sample}` in:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Replace the config file (the watcher picks it up).
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.file, text).expect("write config");
    }

    /// Stop the gRPC server and wait for it (the metrics endpoint stays up).
    pub async fn stop_server(&mut self) {
        self.stop_server.cancel();
        if let Some(task) = self.task.take() {
            within("the server task", task)
                .await
                .expect("the server task panicked")
                .expect("the server failed");
        }
    }

    /// `GET path` on the metrics endpoint: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
            .get(format!("http://{}{path}", self.metrics_addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop_server.cancel();
        self.stop_rest.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
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
