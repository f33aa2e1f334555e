//! Runs `vibectl::server::run` in-process on `127.0.0.1:0` for a test, with its providers
//! pointed at a mock provider, and connects a gRPC client to it. The server stops through a
//! oneshot (or when the handle is dropped), and the test can await its task.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use vibectl::config::ServerConfig;
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::proto::{ExecuteRequest, ExecuteResponse, execute_response};
use vibectl::server::{RunOptions, ServerError, State};

use super::mock::MockProvider;
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

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
    /// Where a generated JWT secret would be kept.
    _dir: TempDir,
}

impl TestServer {
    /// Build the state from `config` (with an empty environment) and serve it.
    pub async fn start(config: ServerConfig) -> TestServer {
        TestServer::start_with(config, RunOptions::default()).await
    }

    pub async fn start_with(config: ServerConfig, options: RunOptions) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = State::build(config, dir.path(), &no_env)
            .unwrap_or_else(|p| panic!("the test config does not build: {p:?}"));
        let state = Arc::new(ArcSwap::from_pointee(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        };
        let task = tokio::spawn(vibectl::server::run(state, listener, shutdown, options));
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
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
        self.shutdown();
        let task = self.take_task();
        within("the server task", task)
            .await
            .expect("the server task panicked")
            .expect("the server failed");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
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
