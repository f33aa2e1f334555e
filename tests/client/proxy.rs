//! The same commands through our `vibectl-server` binary print what they print in direct
//! mode: `setup-proxy configure` switches the client to the server, which holds the key.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;
use vibectl::llm::ProviderKind;

use super::{API_KEY, Client, MODEL, PODS, plan_json};
use crate::support::mock::MockProvider;
use crate::support::process::{self, KillOnDrop};

/// Longest wait for the server to print its listening line.
const START_LIMIT: Duration = Duration::from_secs(30);
const SECRET: &str = "client-test-secret-0123456789abcdef0123";

/// Our server, serving [`MODEL`] from the mock with [`API_KEY`], auth on.
pub(crate) struct Server {
    dir: TempDir,
    pub(crate) addr: String,
    /// Killed with the server.
    _child: KillOnDrop,
}

impl Server {
    fn command(dir: &TempDir) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vibectl-server"));
        cmd.arg("--config")
            .arg(dir.path().join("config.yaml"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path());
        cmd
    }

    pub(super) fn start(mock: &MockProvider) -> Server {
        Self::start_with(mock, false)
    }

    /// With `tls`, the server serves a certificate for 127.0.0.1 from a CA made by `ca init`
    /// (its bundle is [`Server::ca_bundle`]).
    fn start_with(mock: &MockProvider, tls: bool) -> Server {
        Self::start_custom(mock, tls, |_| {})
    }

    /// [`Server::start_with`], with `customize` applied to the `serve` command (environment,
    /// limits of the process) before it starts.
    pub(crate) fn start_custom(
        mock: &MockProvider,
        tls: bool,
        customize: impl FnOnce(&mut Command),
    ) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("vibectl-client-server-")
            .tempdir()
            .expect("temp dir");
        let mut yaml = format!(
            "server: {{default_model: {MODEL}}}\n\
             jwt: {{enabled: true, secret_key: {SECRET}}}\n\
             providers: {{openai: {{base_url: \"{base}\", key: {API_KEY}}}}}\n\
             models: {{{MODEL}: {{}}}}\n",
            base = mock.base_url(ProviderKind::OpenAi),
        );
        std::fs::write(dir.path().join("config.yaml"), &yaml).expect("write");
        if tls {
            for args in [
                &["ca", "init"][..],
                &[
                    "ca",
                    "create-server-cert",
                    "localhost",
                    "--san",
                    "127.0.0.1",
                ][..],
            ] {
                process::run(Self::command(&dir).args(args), super::LIMIT).assert_success();
            }
            let certs = dir.path().join("ca/server_certs");
            yaml.push_str(&format!(
                "tls: {{enabled: true, cert_file: \"{}\", key_file: \"{}\"}}\n",
                certs.join("localhost.crt").display(),
                certs.join("localhost.key").display()
            ));
            std::fs::write(dir.path().join("config.yaml"), &yaml).expect("write");
        }
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
        let mut serve = Self::command(&dir);
        customize(&mut serve);
        let child = serve
            .args(["serve", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start vibectl-server");
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(START_LIMIT).unwrap_or_default();
        let addr = line
            .strip_prefix("vibectl-server listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| {
                panic!(
                    "the server did not start (first line {line:?})\n{}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                )
            })
            .to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server {
            dir,
            addr,
            _child: child,
        }
    }

    fn ca_bundle(&self) -> std::path::PathBuf {
        self.dir.path().join("ca/ca-bundle.crt")
    }

    /// Point `client` at this server: `setup-proxy configure prod URL` with a fresh token.
    pub(crate) fn connect(&self, client: &Client) {
        let url = format!("vibectl-server-insecure://{}@{}", self.token(), self.addr);
        client
            .run(&["setup-proxy", "configure", "prod", &url])
            .assert_success();
    }

    pub(crate) fn token(&self) -> String {
        let out = process::run(
            Self::command(&self.dir).args(["generate-token", "client-test"]),
            super::LIMIT,
        );
        out.assert_success();
        out.stdout.trim().to_owned()
    }
}

#[tokio::test]
async fn commands_print_the_same_through_our_server_as_direct() {
    let plan = plan_json(&["get", "pods"], "list the pods");
    // The mock checks the key: only the client's env (direct) or the server (proxied) has it.
    let mock = MockProvider::start(&["--reply", &plan, "--api-key", API_KEY]);
    let mut client = Client::new(
        &format!("{PODS}[[mock:reply=Two pods are running.]]\n"),
        "",
        0,
    );
    client.configure(&mock, false, "memory:\n  enabled: false\n");
    let commands: [&[&str]; 2] = [&["get", "pods"], &["vibe", "show pods", "--yes"]];

    client.env = vec![("VIBECTL_OPENAI_API_KEY".into(), API_KEY.into())];
    let direct: Vec<String> = commands
        .iter()
        .map(|args| client.run(args).assert_success().stdout.clone())
        .collect();
    assert_eq!(direct[0], "Two pods are running.\n");
    assert_eq!(
        direct[1],
        "$ kubectl get pods\n  list the pods\nTwo pods are running.\n"
    );

    client.env.clear();
    let server = Server::start(&mock);
    let url = format!(
        "vibectl-server-insecure://{}@{}",
        server.token(),
        server.addr
    );
    client
        .run(&["setup-proxy", "configure", "prod", &url])
        .assert_success();
    for (args, expected) in commands.iter().zip(&direct) {
        let out = client.run(args);
        out.assert_success();
        assert_eq!(&out.stdout, expected, "through the server\n{out}");
    }
    // Without the server, the client has no key: the proxied runs really went through it.
    let out = client.fails(&["--no-proxy", "get", "pods"]);
    assert!(out.stderr.contains("credentials"), "{out}");
    assert_eq!(
        client.kubectl_runs(),
        ["get pods"; 5],
        "two direct runs, two proxied, one refused by the provider"
    );

    let out = client.run(&["version"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("vibectl {}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("server: "), "{out}");
    assert!(lines[1].ends_with("(proxy profile prod)"), "{out}");
    assert_eq!(
        client.kubectl_runs().last().map(String::as_str),
        Some("version")
    );
}

#[tokio::test]
async fn vibe_and_get_work_over_tls_with_a_ca_bundle() {
    let plan = plan_json(&["get", "pods"], "list the pods");
    let mock = MockProvider::start(&["--reply", &plan, "--api-key", API_KEY]);
    let client = Client::new(
        &format!("{PODS}[[mock:reply=Two pods are running.]]\n"),
        "",
        0,
    );
    client.configure(&mock, false, "memory:\n  enabled: false\n");
    let server = Server::start_with(&mock, true);
    let url = format!("vibectl-server://{}@{}", server.token(), server.addr);
    let bundle = server.ca_bundle();
    let bundle = bundle.to_str().expect("utf-8 path");
    client
        .run(&[
            "setup-proxy",
            "configure",
            "prod",
            &url,
            "--ca-bundle",
            bundle,
        ])
        .assert_success();
    let out = client.run(&["vibe", "show pods", "--yes"]);
    out.assert_success();
    assert_eq!(
        out.stdout, "$ kubectl get pods\n  list the pods\nTwo pods are running.\n",
        "{out}"
    );
    let out = client.run(&["get", "pods"]);
    out.assert_success();
    assert_eq!(out.stdout, "Two pods are running.\n", "{out}");
    assert_eq!(client.kubectl_runs(), ["get pods"; 2]);
}

#[tokio::test]
async fn a_model_named_the_direct_way_works_through_a_server_serving_the_plain_name() {
    let mock = MockProvider::start(&["--reply", "Two pods.", "--api-key", API_KEY]);
    let client = Client::with_pods();
    client.configure(&mock, false, "memory:\n  enabled: false\n");
    let server = Server::start(&mock);
    server.connect(&client);
    let direct_name = format!("openai/{MODEL}");
    let out = client.run(&["--model", &direct_name, "get", "pods"]);
    out.assert_success();
    assert_eq!(out.stdout, "Two pods.\n", "{out}");
    assert_eq!(mock.last_request().await["body"]["model"], MODEL);

    // Another provider's prefix is not this model: the error lists the names to use.
    let out = client.fails(&["--model", &format!("anthropic/{MODEL}"), "get", "pods"]);
    assert!(out.stderr.contains(&format!("available: {MODEL}")), "{out}");
}
