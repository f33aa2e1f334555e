//! Secrets that must not leak: provider error text and upstream addresses never reach a client;
//! a sensitive config value is never printed, even when it is the wrong type; tokens and keys
//! never print through `Debug` or a URL complaint; the usage log is private; a token's lifetime
//! cannot overflow (`exp` at the end of time, `--expires-in` past the limit) and `nbf` is
//! honoured; `serve` warns when its key-holding config file is readable by others.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tonic::Code;
use vibectl::config::{SERVER, Secret};
use vibectl::llm::proxy::ProxySettings;
use vibectl::llm::proxy_url::ProxyUrl;
use vibectl::proto::{ExecuteRequest, execute_response};
use vibectl::server::exec::code;
use vibectl::server::governance::usage::UsageStore;

use crate::support::mock::MockProvider;
use crate::support::process;
use crate::support::server::{
    API_KEY, LIMIT, MODEL, TestServer, authorized, config, execute, request, within,
};

/// The JWT secret of the auth tests.
const JWT_SECRET: &str = "hostile-test-secret";
/// A token stand-in that must never show up in what is printed.
const TOKEN: &str = "eyJhbGciOi.sekrit-payload.sig";

/// The error of an Execute that fails upstream.
async fn upstream_error(server: &TestServer, req: ExecuteRequest) -> vibectl::proto::ExecuteError {
    let mut client = server.client().await;
    match execute(&mut client, req).await.1 {
        execute_response::Result::Error(e) => e,
        other => panic!("expected an upstream error: {other:?}"),
    }
}

#[tokio::test]
async fn provider_text_and_upstream_addresses_stay_on_the_server() {
    let mock = MockProvider::start(&[]);
    let mock_host = mock.url().trim_start_matches("http://").to_owned();
    let server = TestServer::start(config(&mock)).await;
    for (marker, expected) in [
        ("[[mock:status=401]]", code::PROVIDER_AUTH_FAILED),
        ("[[mock:status=500]]", code::PROVIDER_UNAVAILABLE),
        ("[[mock:status=400]]", code::INVALID_REQUEST),
    ] {
        let e = upstream_error(&server, request(marker, None)).await;
        assert_eq!(e.error_code, expected, "{e:?}");
        let shown = format!(
            "{} {}",
            e.error_message,
            e.error_details.unwrap_or_default()
        );
        assert!(!shown.contains("(mock)"), "provider text: {shown}");
        assert!(!shown.contains(&mock_host), "upstream address: {shown}");
        assert!(!shown.contains(API_KEY), "the key: {shown}");
        assert!(shown.contains(MODEL), "says which model failed: {shown}");
    }
    // A provider that cannot be reached: its address is not told.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let mut cfg = config(&mock);
    for p in cfg.providers.values_mut() {
        p.base_url = Some(format!("http://{closed_addr}/v1"));
    }
    let server = TestServer::start(cfg).await;
    let e = upstream_error(&server, request("hi", None)).await;
    assert_eq!(e.error_code, code::PROVIDER_UNAVAILABLE, "{e:?}");
    assert!(!e.error_message.contains(&closed_addr), "{e:?}");
    assert!(!e.error_message.contains("127.0.0.1"), "{e:?}");
}

/// An HS256 token signed with [`JWT_SECRET`] carrying `claims`.
fn token(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test]
async fn exp_at_the_end_of_time_does_not_overflow_and_nbf_is_honoured() {
    let mock = MockProvider::start(&[]);
    let mut cfg = config(&mock);
    cfg.jwt.enabled = true;
    cfg.jwt.secret_key = Some(Secret::new(JWT_SECRET));
    let issuer = cfg.jwt.issuer.clone();
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let forever = token(serde_json::json!({
        "sub": "forever", "iss": issuer, "iat": now(), "exp": i64::MAX,
    }));
    let bearer = format!("Bearer {forever}");
    // The second call takes the remembered-token path, where `exp + leeway` overflowed.
    for n in 1..=2 {
        let resp = within(
            "Execute",
            client.execute(authorized(request("hi", None), Some(&bearer))),
        )
        .await;
        assert!(resp.is_ok(), "call {n} with exp = i64::MAX: {resp:?}");
    }
    let early = token(serde_json::json!({
        "sub": "early", "iss": issuer, "iat": now(), "exp": now() + 7200, "nbf": now() + 3600,
    }));
    let status = within(
        "Execute",
        client.execute(authorized(
            request("hi", None),
            Some(&format!("Bearer {early}")),
        )),
    )
    .await
    .expect_err("a token not valid for an hour is refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("not valid yet"), "{status:?}");
}

#[test]
fn the_usage_log_is_private_and_an_open_one_is_narrowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fresh = dir.path().join("fresh.jsonl");
    drop(UsageStore::open(Some(fresh.clone())));
    let open = dir.path().join("open.jsonl");
    std::fs::write(&open, "").expect("write");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(UsageStore::open(Some(open.clone())));
    for path in [fresh, open] {
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", path.display());
    }
}

/// A provider key stand-in that must never show up in what is printed.
const PROVIDER_KEY: &str = "sk-sekrit-provider-key";

/// `shown` holds none of the secrets of these tests.
fn assert_no_secret(what: &str, shown: &str) {
    for secret in ["sekrit", JWT_SECRET] {
        assert!(!shown.contains(secret), "{what} prints a secret: {shown}");
    }
}

/// Every struct that carries a provider key, a bearer token or the JWT secret, from the configs
/// through the `llm` layer to the server's upstreams, formats with `{:?}` without it: each holds
/// it as a `Secret`, which prints `**REDACTED**`.
#[tokio::test]
async fn tokens_and_keys_never_print() {
    use vibectl::config::generated::client::ClientConfig;
    use vibectl::llm::direct::DirectAdapter;
    use vibectl::llm::proxy::ProxyAdapter;
    use vibectl::llm::{ProviderClient, ProviderKind, ProviderOptions};

    let url =
        ProxyUrl::parse(&format!("vibectl-server-insecure://{TOKEN}@127.0.0.1:9")).expect("url");
    assert_no_secret("ProxyUrl", &format!("{url:?} {url}"));
    let settings = ProxySettings {
        token: url.token.clone(),
        url,
        ca_bundle: None,
        client_identity: None,
        timeout: Duration::from_secs(1),
        retry_attempts: 0,
    };
    assert_no_secret("ProxySettings", &format!("{settings:?}"));
    let adapter = ProxyAdapter::new(settings).expect("adapter");
    assert_no_secret("ProxyAdapter", &format!("{adapter:?}"));

    let mut client_cfg = ClientConfig::default();
    client_cfg.providers.openai.key = Some(Secret::new(PROVIDER_KEY));
    let env = |k: &str| (k == "VIBECTL_ANTHROPIC_API_KEY").then(|| PROVIDER_KEY.to_owned());
    let direct = DirectAdapter::from_config(&client_cfg, &env).expect("direct adapter");
    let shown = format!("{client_cfg:?} {direct:?}");
    assert_no_secret("the client config and DirectAdapter", &shown);
    assert!(shown.contains(vibectl::config::secret::REDACTED), "{shown}");

    let provider = ProviderClient::new(
        ProviderKind::Anthropic,
        Some("http://127.0.0.1:9"),
        Some(Secret::new(PROVIDER_KEY)),
        ProviderOptions::default(),
    )
    .expect("provider client");
    assert_no_secret("ProviderClient", &format!("{provider:?}"));

    let mock = MockProvider::start(&[]);
    let mut server_cfg = config(&mock);
    server_cfg.jwt.secret_key = Some(Secret::new(JWT_SECRET));
    for p in server_cfg.providers.values_mut() {
        p.key = Some(Secret::new(PROVIDER_KEY));
    }
    let upstreams = vibectl::server::upstream::build(&server_cfg, &|_| None);
    assert!(
        upstreams.values().all(|u| u.client.is_ok()),
        "{upstreams:?}"
    );
    assert_no_secret(
        "the server config and its upstreams",
        &format!("{server_cfg:?} {upstreams:?}"),
    );

    // Complaints about a URL quote the part at fault, not the token before its `@`.
    for url in [
        format!("vibectl-server://base64/{TOKEN}@host:1"),
        format!("{TOKEN}@host:1"),
        format!("{TOKEN}@vibectl-server://host:1"),
    ] {
        let e = ProxyUrl::parse(&url).expect_err("a bad URL");
        assert_no_secret("a URL complaint", &format!("{e} {e:?}"));
    }
}

#[test]
fn a_sensitive_value_of_the_wrong_type_is_not_printed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "jwt:\n  secret_key: 987654321\nproviders:\n  mock:\n    kind: openai\n    key: 123456789\n",
    )
    .expect("write");
    let loaded = SERVER.load(&file).expect("loads");
    let e = SERVER
        .validate(&loaded)
        .expect_err("numbers where strings belong");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("secret_key"), "names the key: {shown}");
    assert!(!shown.contains("987654321"), "{shown}");
    assert!(!shown.contains("123456789"), "{shown}");
}

use crate::support::spawned::command as server_command;

#[test]
fn generate_token_refuses_a_lifetime_past_the_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("config.yaml"), "jwt:\n  enabled: true\n").expect("write");
    let huge = "99999999999999y";
    let out = process::run(
        &mut server_command(
            dir.path(),
            &["generate-token", "alice", "--expires-in", huge],
        ),
        LIMIT,
    );
    assert!(!out.success(), "{out}");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stderr.contains("--expires-in"), "{}", out.stderr);
}

#[test]
fn serve_warns_when_its_key_file_is_readable_by_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "providers:\n  mock:\n    kind: openai\n    key: sk-hostile-0123\n    base_url: http://127.0.0.1:9/v1\n",
    )
    .expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    // A busy port makes serve stop right after its start-up checks.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let out = process::run(
        &mut server_command(dir.path(), &["serve", "--port", &port]),
        LIMIT,
    );
    assert!(!out.success(), "the port is busy: {out}");
    assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
    assert!(!out.stderr.contains("sk-hostile"), "{}", out.stderr);
}
