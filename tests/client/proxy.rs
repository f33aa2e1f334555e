//! The same commands through our `vibectl-server` binary print what they print in direct
//! mode: `setup-proxy configure` switches the client to the server, which holds the key.

use std::process::Command;

use tempfile::TempDir;
use vibectl::llm::ProviderKind;

use super::{API_KEY, Client, MODEL, PODS, plan_json};
use crate::support::mock::MockProvider;
use crate::support::process;
use crate::support::spawned::{self, Spawned};

const SECRET: &str = "client-test-secret-0123456789abcdef0123";

/// Our server, serving [`MODEL`] from the mock with [`API_KEY`], auth on: the one out-of-process
/// fixture ([`Spawned`]) on a config written here.
pub(crate) struct Server {
    pub(crate) addr: String,
    spawned: Spawned,
    dir: TempDir,
}

impl Server {
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
                process::run(&mut spawned::command(dir.path(), args), super::LIMIT)
                    .assert_success();
            }
            let certs = dir.path().join("ca/server_certs");
            yaml.push_str(&format!(
                "tls: {{enabled: true, cert_file: \"{}\", key_file: \"{}\"}}\n",
                certs.join("localhost.crt").display(),
                certs.join("localhost.key").display()
            ));
            std::fs::write(dir.path().join("config.yaml"), &yaml).expect("write");
        }
        let spawned = Spawned::start_in(dir.path(), &[], customize);
        let addr = spawned.addr.to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server { addr, spawned, dir }
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
        self.spawned.token("client-test")
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
