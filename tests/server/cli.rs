//! The `vibectl-server` binary as an operator runs it: `serve` refusing bad configs and open
//! unauthenticated binds, serving and stopping on SIGTERM; `generate-token` printing one token
//! and keeping a generated secret.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use clap::Parser;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tempfile::TempDir;
use vibectl::cli::vibectl_server::{Cli, Command as ServerCommand, serve};
use vibectl::proto::GetServerInfoRequest;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;

use crate::support::server::{LIMIT, within};
use crate::support::spawned::{LISTENING, Spawned};

const BIN: &str = env!("CARGO_BIN_EXE_vibectl-server");

/// A temp dir holding `config.yaml` with `text`.
fn config_dir(text: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, text).expect("write config");
    (dir, file)
}

/// The binary with `--config FILE`, an empty environment (no secret or key of this machine
/// leaks in) and HOME in the temp dir.
fn server_cmd(file: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("HOME", file.parent().expect("config dir"))
        .arg("--config")
        .arg(file)
        .timeout(LIMIT);
    cmd
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

#[test]
fn serve_with_an_invalid_config_exits_1_naming_every_bad_key() {
    let (_dir, file) = config_dir("server:\n  port: 99999\njwt:\n  enabled: maybe\n");
    let out = server_cmd(&file).arg("serve").output().expect("run");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("server.port"), "{err}");
    assert!(err.contains("jwt.enabled"), "{err}");
    assert!(out.stdout.is_empty(), "nothing was served");
}

#[test]
fn serve_refuses_an_open_host_without_auth() {
    let (_dir, file) = config_dir("server:\n  port: 50051\n");
    let out = server_cmd(&file)
        .args(["serve", "--host", "0.0.0.0", "--port", "0"])
        .output()
        .expect("run");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("0.0.0.0"), "{err}");
    let hint = err
        .lines()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or_else(|| panic!("no hint: {err}"));
    assert!(hint.contains("--require-auth"), "{hint}");
    assert!(out.stdout.is_empty());
}

/// The config `serve` would run with for these arguments (checked in-process, so no test binds
/// a non-loopback address).
fn serve_config(file: &Path, args: &[&str]) -> Result<vibectl::config::ServerConfig, String> {
    let argv = [
        "vibectl-server",
        "--config",
        file.to_str().expect("utf-8 path"),
        "serve",
    ];
    let cli = Cli::try_parse_from(argv.iter().chain(args)).expect("arguments parse");
    let ServerCommand::Serve(serve_args) = &cli.command else {
        panic!("not serve");
    };
    serve::load_config(file, serve_args).map_err(|e| e.message)
}

#[test]
fn an_open_host_is_allowed_with_auth_or_an_explicit_opt_out() {
    let (_dir, file) = config_dir("server:\n  port: 50051\n");
    let refused = serve_config(&file, &["--host", "0.0.0.0"]).expect_err("refused");
    assert!(refused.contains("authentication off"), "{refused}");
    let open = serve_config(&file, &["--host", "0.0.0.0", "--allow-unauthenticated"])
        .expect("--allow-unauthenticated lets it through");
    assert_eq!(open.server.host, "0.0.0.0");
    assert!(!open.jwt.enabled);
    let authed = serve_config(&file, &["--host", "0.0.0.0", "--require-auth"]).expect("auth on");
    assert!(authed.jwt.enabled);
}

/// Decode `token` with `secret`, checking the signature, issuer and expiry.
fn verify(token: &str, secret: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&["vibectl-server"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
        .unwrap_or_else(|e| panic!("the token does not verify: {e}"))
        .claims
}

/// Run `generate-token alice`; the one line it prints.
fn generate(file: &Path) -> String {
    let out = server_cmd(file)
        .args(["generate-token", "alice"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert_eq!(text.matches('\n').count(), 1, "exactly one line: {text:?}");
    let token = text.strip_suffix('\n').expect("ends with a newline");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert!(parts.iter().all(|p| !p.is_empty()), "{token}");
    assert!(
        !token.chars().any(char::is_whitespace),
        "not wrapped: {token:?}"
    );
    token.to_owned()
}

#[test]
fn generate_token_prints_one_token_and_keeps_a_generated_secret() {
    let (dir, file) = config_dir("jwt:\n  enabled: true\n");
    let secret_file = dir.path().join("jwt-secret");
    assert!(!secret_file.exists());

    let first = generate(&file);
    assert!(secret_file.exists(), "the generated secret is kept");
    assert_eq!(mode(&secret_file), 0o600);
    let secret = std::fs::read_to_string(&secret_file).expect("read secret");
    let secret = secret.trim();
    assert!(secret.len() >= 32, "a strong secret: {secret:?}");

    let second = generate(&file);
    assert_eq!(
        std::fs::read_to_string(&secret_file)
            .expect("read secret")
            .trim(),
        secret,
        "the second call reuses the secret"
    );
    assert_ne!(first, second, "each token has its own jti");
    for token in [&first, &second] {
        let claims = verify(token, secret);
        assert_eq!(claims["sub"], "alice");
        assert!(claims["jti"].as_str().is_some(), "{claims}");
        let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
        assert_eq!(
            exp.zip(iat).map(|(e, i)| e - i),
            Some(30 * 86_400),
            "default jwt.expiration_days: {claims}"
        );
    }
}

#[test]
fn generate_token_rejects_a_bad_lifetime_naming_the_flag() {
    let (dir, file) = config_dir("jwt:\n  secret_key: s3cret\n");
    for bad in ["0d", "3x"] {
        let out = server_cmd(&file)
            .args(["generate-token", "alice", "--expires-in", bad])
            .output()
            .expect("run");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "--expires-in {bad}: {err}");
        assert!(err.contains("--expires-in"), "{err}");
        assert!(err.contains(bad), "{err}");
        assert!(out.stdout.is_empty(), "no token for --expires-in {bad}");
    }
    assert!(!dir.path().join("jwt-secret").exists());
}

#[test]
fn generate_token_output_writes_a_private_file() {
    let (dir, file) = config_dir("jwt:\n  secret_key: s3cret\n");
    let token_file = dir.path().join("alice.jwt");
    let out = server_cmd(&file)
        .args(["generate-token", "alice", "--expires-in", "12h", "--output"])
        .arg(&token_file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty(), "the token goes to the file only");
    assert_eq!(mode(&token_file), 0o600);
    let text = std::fs::read_to_string(&token_file).expect("read token");
    let claims = verify(text.trim(), "s3cret");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .map(|(e, i)| e - i),
        Some(12 * 3600)
    );
}

/// A `vibectl-server serve` process, killed if the test fails before it exits.
#[tokio::test]
async fn serve_listens_answers_and_exits_0_on_sigterm() {
    let (dir, file) = config_dir(
        "server:\n  default_model: m1\n\
         providers:\n  up:\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\n    key: k\n\
         models:\n  m1:\n    provider: up\n",
    );
    let text = std::fs::read_to_string(&file).expect("read the config");
    drop(dir);
    let mut server = Spawned::start(&text, &[]);
    let line = server.line(LISTENING);
    let addr = server.addr.to_string();
    let port: u16 = addr
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not 127.0.0.1:PORT: {line:?}"));
    assert_ne!(port, 0);

    let mut client = within(
        "connecting",
        VibectlLlmProxyClient::connect(format!("http://{addr}")),
    )
    .await
    .expect("connect");
    let info = within(
        "GetServerInfo",
        client.get_server_info(GetServerInfoRequest {}),
    )
    .await
    .expect("GetServerInfo")
    .into_inner();
    assert_eq!(info.default_model, "m1");
    drop(client);

    server.signal("TERM");
    let status = server.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}
