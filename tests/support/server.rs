//! The test config builder and the in-process server fixture: [`TestServer`] starts the same
//! wiring `vibectl-server serve` starts ([`vibectl::server::wiring::start`]) on `127.0.0.1:0`,
//! with its providers pointed at a mock provider; [`super::spawned`] runs the real binary on a
//! config from the same builder.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use vibectl::cli::vibectl_server::serve::ServeArgs;
use vibectl::config::ServerConfig;
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::proto::{ExecuteRequest, ExecuteResponse, execute_response};
use vibectl::server::wiring::{self, Wiring};
use vibectl::server::{Governance, ServerError, State};

use super::mock::MockProvider;
use super::wait;
use super::yaml::{self, entry};

/// Bound on any single wait in the server tests.
pub const LIMIT: Duration = Duration::from_secs(15);

/// The provider entry name the default test config routes to the mock.
pub const PROVIDER: &str = "mock";
/// The model the default test config offers (and its default model).
pub const MODEL: &str = "mock-model";
/// `MODEL`'s own alias (models.mock-model.aliases).
pub const MODEL_ALIAS: &str = "mm";
/// A top-level alias (model_aliases) of `MODEL`.
pub const GLOBAL_ALIAS: &str = "fast";
/// The model name the server sends upstream for `MODEL`.
pub const UPSTREAM_MODEL: &str = "mock-upstream";
/// The API key the test config gives the mock provider entry.
pub const API_KEY: &str = "test-key";

/// Await `fut`, panicking with `what` if it takes longer than [`LIMIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {LIMIT:?}"))
}

/// A config serving one OpenAI-speaking provider entry at the mock, with [`MODEL`] (aliases
/// [`MODEL_ALIAS`] and [`GLOBAL_ALIAS`]) as the default model, no retries, and auth off.
pub fn config(mock: &MockProvider) -> ServerConfig {
    from_yaml(&yaml::config(&config_pairs(mock)))
}

/// The `(dotted key, YAML value)` pairs of [`config`], to extend before [`from_yaml`].
pub fn config_pairs(mock: &MockProvider) -> Vec<(String, String)> {
    let p = |k: &str| entry(k, PROVIDER);
    let m = |k: &str| entry(k, MODEL);
    vec![
        (key::SERVER_DEFAULT_MODEL.to_owned(), MODEL.to_owned()),
        (p(key::PROVIDERS_PROVIDER_KIND), "openai".to_owned()),
        (p(key::PROVIDERS_PROVIDER_KEY), API_KEY.to_owned()),
        (
            p(key::PROVIDERS_PROVIDER_BASE_URL),
            mock.base_url(ProviderKind::OpenAi),
        ),
        (p(key::PROVIDERS_PROVIDER_TIMEOUT_SECONDS), "10".to_owned()),
        (p(key::PROVIDERS_PROVIDER_MAX_RETRIES), "0".to_owned()),
        (m(key::MODELS_ID_PROVIDER), PROVIDER.to_owned()),
        (m(key::MODELS_ID_UPSTREAM_MODEL), UPSTREAM_MODEL.to_owned()),
        (m(key::MODELS_ID_DISPLAY_NAME), "Mock Model".to_owned()),
        (m(key::MODELS_ID_ALIASES), format!("[{MODEL_ALIAS}]")),
        (m(key::MODELS_ID_MAX_CONTEXT_LENGTH), "8192".to_owned()),
        (
            entry(key::MODEL_ALIASES_ALIAS, GLOBAL_ALIAS),
            MODEL.to_owned(),
        ),
    ]
}

/// Set `key` to `value` in `pairs`: in place when it is there, else after the key it shares the
/// most sections with, so that [`yaml::config`] keeps each section in one piece.
pub fn set(pairs: &mut Vec<(String, String)>, key: &str, value: &str) {
    if let Some(pair) = pairs.iter_mut().find(|(k, _)| k == key) {
        pair.1 = value.to_owned();
        return;
    }
    let shared = |k: &str| {
        k.split('.')
            .zip(key.split('.'))
            .take_while(|(a, b)| a == b)
            .count()
    };
    let most = pairs.iter().map(|(k, _)| shared(k)).max().unwrap_or(0);
    let at = pairs
        .iter()
        .rposition(|(k, _)| most > 0 && shared(k) == most)
        .map_or(pairs.len(), |i| i + 1);
    pairs.insert(at, (key.to_owned(), value.to_owned()));
}

/// Remove `key` from `pairs`; it must be there.
pub fn unset(pairs: &mut Vec<(String, String)>, key: &str) {
    let before = pairs.len();
    pairs.retain(|(k, _)| k != key);
    assert_eq!(pairs.len() + 1, before, "{key} is not in the config");
}

/// A server config read from YAML text as `serve` reads its file (validated, defaults filled),
/// with an empty environment.
pub fn from_yaml(text: &str) -> ServerConfig {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, text).expect("write the config");
    vibectl::server::reload::load(&file, &[], &no_env)
        .unwrap_or_else(|p| panic!("the test config does not load: {p:?}\n{text}"))
}

/// An environment with nothing in it, so no real key or secret of the machine is read.
pub fn no_env(_: &str) -> Option<String> {
    None
}

/// How a [`TestServer`] is started, besides its config.
pub struct Options {
    /// The address to bind (`0.0.0.0` makes a server that counts as exposed to the network;
    /// the tests still reach it through 127.0.0.1 only). The port is always 0.
    pub host: String,
    /// How long calls in flight may run on after shutdown.
    pub drain_deadline: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "127.0.0.1".to_owned(),
            drain_deadline: vibectl::server::DRAIN_DEADLINE,
        }
    }
}

/// How often a test server looks at its config file.
pub const RELOAD_POLL: Duration = Duration::from_millis(50);

/// The flags every test server is started with, as `serve` takes them: `--port 0` and
/// `--metrics-addr 127.0.0.1:0`.
fn serve_args(host: &str) -> ServeArgs {
    ServeArgs {
        host: Some(host.to_owned()),
        port: Some(0),
        model: None,
        require_auth: false,
        tls: false,
        no_tls: false,
        max_rpm: None,
        max_concurrent: None,
        metrics_addr: Some("127.0.0.1:0".to_owned()),
        allow_unauthenticated: true,
    }
}

/// A server running in this process, started through [`vibectl::server::wiring::start`] as
/// `vibectl-server serve` starts it (listener, TLS per `tls.*`, usage log, limit counters, config
/// watcher, metrics endpoint on 127.0.0.1), with its providers pointed at a mock provider. The
/// server stops through a oneshot (or when the handle is dropped), and the test can await it.
pub struct TestServer {
    /// Where clients connect: always on 127.0.0.1.
    pub addr: SocketAddr,
    /// The address the server is bound to.
    pub bound: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The config file the watcher looks at (absent for a server started from a typed config,
    /// until a test writes it).
    pub file: PathBuf,
    /// The config directory: the usage log and a generated JWT secret go here.
    pub dir: TempDir,
    pub state: Arc<ArcSwap<State>>,
    pub gov: Arc<Governance>,
    stop: Option<oneshot::Sender<()>>,
    /// Stops the metrics endpoint and the watcher, which outlive the gRPC server until dropped.
    stop_rest: CancellationToken,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    /// Serve `config` (with an empty environment) on 127.0.0.1.
    pub async fn start(config: ServerConfig) -> TestServer {
        TestServer::start_with(config, Options::default()).await
    }

    pub async fn start_with(mut config: ServerConfig, options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("config.yaml");
        let args = serve_args(&options.host);
        let overrides = args.overrides().expect("the test flags");
        // What the flags do to a config read from a file.
        config.server.host = options.host.clone();
        config.server.port = 0;
        config.metrics.enabled = true;
        config.metrics.listen = "127.0.0.1:0".to_owned();
        TestServer::launch(config, dir, file, overrides, options).await
    }

    /// Serve the config file `text` on 127.0.0.1, read as `serve` reads it.
    pub async fn from_text(text: &str) -> TestServer {
        TestServer::from_text_with(text, Options::default()).await
    }

    /// [`TestServer::from_text`] bound to `host` (`0.0.0.0` counts as exposed to the network).
    pub async fn from_text_on(text: &str, host: &str) -> TestServer {
        let options = Options {
            host: host.to_owned(),
            ..Options::default()
        };
        TestServer::from_text_with(text, options).await
    }

    pub async fn from_text_with(text: &str, options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, text).expect("write the config");
        let args = serve_args(&options.host);
        let overrides = args.overrides().expect("the test flags");
        let mut config = vibectl::server::reload::load(&file, &overrides, &no_env)
            .unwrap_or_else(|p| panic!("the test config does not load: {p:?}\n{text}"));
        config.server.port = 0;
        TestServer::launch(config, dir, file, overrides, options).await
    }

    async fn launch(
        config: ServerConfig,
        dir: TempDir,
        file: PathBuf,
        overrides: Vec<vibectl::config::Override>,
        options: Options,
    ) -> TestServer {
        let state = State::build(config.clone(), dir.path(), &no_env)
            .unwrap_or_else(|p| panic!("the test config does not build: {p:?}"));
        let mut wiring = Wiring::new(&file, overrides, Arc::new(no_env));
        wiring.reload_interval = RELOAD_POLL;
        wiring.drain_deadline = options.drain_deadline;
        let stop_rest = CancellationToken::new();
        let started = wiring::start(&config, state, wiring, &stop_rest)
            .await
            .unwrap_or_else(|e| panic!("the test server does not start: {e}"));
        let bound = started.addr;
        let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
        let metrics_addr = started.metrics_addr.expect("the metrics endpoint is on");
        let (state, gov) = (started.state.clone(), started.gov.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        };
        let task = tokio::spawn(started.serve(shutdown));
        TestServer {
            addr,
            bound,
            metrics_addr,
            file,
            dir,
            state,
            gov,
            stop: Some(stop),
            stop_rest,
            task: Some(task),
        }
    }

    /// A new client on a new connection.
    pub async fn client(&self) -> VibectlLlmProxyClient<Channel> {
        within("connecting to the server", self.try_client())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e:?}", self.addr))
    }

    /// A new client on a new connection, or why it could not connect.
    pub async fn try_client(
        &self,
    ) -> Result<VibectlLlmProxyClient<Channel>, tonic::transport::Error> {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await?;
        Ok(VibectlLlmProxyClient::new(channel))
    }

    /// Ask the server to shut down (it drains calls in flight).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// The server task; await it after [`TestServer::shutdown`].
    pub fn take_task(&mut self) -> JoinHandle<Result<(), ServerError>> {
        self.task.take().expect("the server task was already taken")
    }

    /// Shut down and wait (bounded) for the task to end cleanly.
    pub async fn stop(mut self) {
        self.stop_server().await;
    }

    /// Stop the gRPC server and wait for it (the metrics endpoint stays up).
    pub async fn stop_server(&mut self) {
        self.shutdown();
        if let Some(task) = self.task.take() {
            within("the server task", task)
                .await
                .expect("the server task panicked")
                .expect("the server failed");
        }
    }

    /// Poll the metrics registry until a sample line reads exactly `sample`, e.g.
    /// `vibectl_config_reloads_total{result="ok"} 1`; panics after [`LIMIT`].
    pub async fn wait_for_metric(&self, sample: &str) {
        wait::until(&format!("the metric `{sample}`"), LIMIT, async || {
            let text = self.gov.metrics.encode();
            if text.lines().any(|l| l == sample) {
                Ok(())
            } else {
                Err(text)
            }
        })
        .await;
    }

    /// Replace the config file (the watcher picks it up).
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.file, text).expect("write config");
    }

    /// `GET path` on the metrics endpoint: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .timeout(LIMIT)
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

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
        self.stop_rest.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An Execute request with one user fragment, for `model` (`None`: the server's default).
pub fn request(user: &str, model: Option<&str>) -> ExecuteRequest {
    ExecuteRequest {
        system_fragments: vec!["You are a test.".to_owned()],
        user_fragments: vec![user.to_owned()],
        model_name: model.map(str::to_owned),
        response_model_schema: None,
        request_id: String::new(),
    }
}

/// `msg` with `authorization: <header>` metadata, when given.
pub fn authorized<T>(msg: T, header: Option<&str>) -> Request<T> {
    let mut req = Request::new(msg);
    if let Some(h) = header {
        let value: MetadataValue<_> = h.parse().expect("a valid metadata value");
        req.metadata_mut().insert("authorization", value);
    }
    req
}

/// Execute `req`; panics on a gRPC error status or a missing result.
pub async fn execute(
    client: &mut VibectlLlmProxyClient<Channel>,
    req: ExecuteRequest,
) -> (String, execute_response::Result) {
    let resp: ExecuteResponse = within("Execute", client.execute(req))
        .await
        .unwrap_or_else(|s| panic!("Execute failed with a gRPC status: {s:?}"))
        .into_inner();
    (resp.request_id, resp.result.expect("a result"))
}

/// Execute a plain request and check it succeeds: the server is still serving.
pub async fn assert_still_serves(client: &mut VibectlLlmProxyClient<Channel>) {
    match execute(client, request("are you still there?", None))
        .await
        .1
    {
        execute_response::Result::Success(s) => assert_eq!(s.actual_model_used, MODEL),
        execute_response::Result::Error(e) => panic!("a good call failed afterwards: {e:?}"),
    }
}
