//! The processes the interop tests talk to: our `vibectl-server` binary (config in a temp dir,
//! routed to the mock provider) and 0.11.6's own server (`scripts/interop/py_server.py`). Both
//! are killed when their handle is dropped.

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use vibectl::llm::ProviderKind;

use crate::support::mock::MockProvider;
use crate::support::process::{self, KillOnDrop};
use crate::support::python;
use crate::support::spawned::Spawned;

/// The JWT secret both sides share in these tests (32+ bytes, so PyJWT does not warn).
pub const SECRET: &str = "interop-shared-secret-0123456789abcdef";
/// A secret nobody else has: tokens signed with it must be refused.
pub const OTHER_SECRET: &str = "some-other-secret-0123456789abcdefghij";
/// The model our test server offers (and its default), and its alias.
pub const MODEL: &str = "gpt-4o";
pub const ALIAS: &str = "fast";
/// What the mock provider answers.
pub const REPLY: &str = "Pong from the mock provider, via the Rust proxy.";

/// Longest wait for 0.11.6's server (mock, config, server start, first answer).
const PY_START_LIMIT: Duration = Duration::from_secs(90);
/// Longest run of `vibectl-server generate-token`.
const CLI_LIMIT: Duration = Duration::from_secs(20);

/// Start the mock provider answering [`REPLY`] (in 3 stream chunks).
pub fn mock() -> MockProvider {
    MockProvider::start(&["--reply", REPLY])
}

/// What goes in our server's config besides the provider and the model.
pub struct Spec {
    pub default_model: Option<&'static str>,
    pub secret: &'static str,
    /// YAML flow mapping for `server.limits.global`, e.g. `{max_input_length: 100}`.
    pub limits: Option<&'static str>,
    /// Serve TLS with a certificate for localhost (and 127.0.0.1) from `generate-certs`.
    pub tls: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            default_model: Some(MODEL),
            secret: SECRET,
            limits: None,
            tls: false,
        }
    }
}

/// A temp dir holding our server's `config.yaml` (and serving as its HOME).
pub struct ConfigDir {
    pub dir: TempDir,
    pub file: PathBuf,
    /// With TLS: the CA bundle clients trust.
    pub ca_bundle: Option<PathBuf>,
}

impl ConfigDir {
    /// Write a config routing [`MODEL`] (alias [`ALIAS`]) to the mock's OpenAI endpoint.
    pub fn new(mock: &MockProvider, spec: &Spec) -> ConfigDir {
        let dir = tempfile::Builder::new()
            .prefix("vibectl-interop-ours-")
            .tempdir()
            .expect("temp dir");
        let mut server = Vec::new();
        if let Some(m) = spec.default_model {
            server.push(format!("default_model: {m}"));
        }
        if let Some(l) = spec.limits {
            server.push(format!("limits: {{global: {l}}}"));
        }
        let yaml = format!(
            "server: {{{server}}}\n\
             jwt: {{enabled: true, secret_key: {secret}}}\n\
             providers: {{openai: {{base_url: \"{base}\", key: sk-test}}}}\n\
             models: {{{MODEL}: {{aliases: [{ALIAS}]}}}}\n",
            server = server.join(", "),
            secret = spec.secret,
            base = mock.base_url(ProviderKind::OpenAi),
        );
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, &yaml).expect("write config.yaml");
        let mut config = ConfigDir {
            dir,
            file,
            ca_bundle: None,
        };
        if spec.tls {
            config.make_certs(yaml);
        }
        config
    }

    /// `generate-certs --hostname localhost`, then turn TLS on with its files.
    fn make_certs(&mut self, mut yaml: String) {
        let out = process::run(
            self.command()
                .args(["generate-certs", "--hostname", "localhost"]),
            CLI_LIMIT,
        );
        out.assert_success();
        let certs = self.dir.path().join("certs");
        let (cert, key, bundle) = (
            certs.join("server_certs/localhost.crt"),
            certs.join("server_certs/localhost.key"),
            certs.join("ca-bundle.crt"),
        );
        for f in [&cert, &key, &bundle] {
            assert!(f.exists(), "generate-certs made no {}\n{out}", f.display());
        }
        yaml.push_str(&format!(
            "tls: {{enabled: true, cert_file: \"{}\", key_file: \"{}\"}}\n",
            s(&cert),
            s(&key)
        ));
        std::fs::write(&self.file, yaml).expect("write config.yaml");
        self.ca_bundle = Some(bundle);
    }

    /// `vibectl-server` with `--config` this file, in an environment holding nothing else.
    pub fn command(&self) -> Command {
        crate::support::spawned::command(self.dir.path(), &[])
    }

    /// `vibectl-server generate-token SUB`: the token it prints.
    pub fn generate_token(&self, sub: &str) -> String {
        let out = process::run(self.command().args(["generate-token", sub]), CLI_LIMIT);
        out.assert_success();
        let token = out.stdout.trim().to_owned();
        assert!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "generate-token printed more than one token\n{out}"
        );
        token
    }
}

/// Our `vibectl-server serve --port 0`, running ([`Spawned`] on this config directory).
pub struct OurServer {
    pub config: ConfigDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    server: RefCell<Spawned>,
}

impl OurServer {
    pub fn start(mock: &MockProvider, spec: &Spec) -> OurServer {
        Self::start_in(ConfigDir::new(mock, spec))
    }

    pub fn start_in(config: ConfigDir) -> OurServer {
        let server = Spawned::start_in(config.dir.path(), &[], |_| {});
        let addr = server.addr.to_string();
        assert!(addr.starts_with("127.0.0.1:"), "not on loopback: {addr}");
        OurServer {
            config,
            addr,
            server: RefCell::new(server),
        }
    }

    /// `vibectl-server-insecure://[TOKEN@]127.0.0.1:PORT`, or with TLS
    /// `vibectl-server://[TOKEN@]localhost:PORT`.
    pub fn url(&self, token: Option<&str>) -> String {
        let (scheme, host) = match self.config.ca_bundle {
            Some(_) => ("vibectl-server", "localhost"),
            None => ("vibectl-server-insecure", "127.0.0.1"),
        };
        let user = token.map(|t| format!("{t}@")).unwrap_or_default();
        format!("{scheme}://{user}{host}:{}", self.port())
    }

    /// The port the server listens on.
    pub fn port(&self) -> &str {
        self.addr.rsplit(':').next().expect("host:port")
    }

    /// With TLS: the CA bundle clients trust, as a `&str`.
    pub fn ca_bundle(&self) -> &str {
        s(self.config.ca_bundle.as_deref().expect("a TLS server"))
    }

    /// A token minted by this server's `generate-token`.
    pub fn token(&self, sub: &str) -> String {
        self.config.generate_token(sub)
    }

    /// What the server logged so far (for failure messages).
    pub fn log(&self) -> String {
        self.server.borrow().stderr()
    }

    /// Whether the server is running, and its log, for failure messages.
    pub fn diagnostics(&self) -> String {
        let state = self.server.borrow_mut().state();
        format!(
            "--- our server on {} ({state}) log ---\n{}",
            self.addr,
            self.log()
        )
    }

    /// Run an interop driver against this server; it must succeed (else: the driver's output,
    /// the server's state and log).
    pub fn driver_ok(&self, script: &str, args: &[&str]) -> Value {
        let (out, json) = python::run_json(&mut python::driver(script, args));
        assert!(
            out.success() && json.get("ok").is_none_or(|ok| ok == true),
            "the driver reported a failure\n{out}\n{}",
            self.diagnostics()
        );
        json
    }

    /// Run a command (0.11.6's CLI) against this server; its output, with the server's state and
    /// log on failure when `must_succeed`.
    pub fn run(&self, cmd: &mut Command, must_succeed: bool) -> process::Output {
        let out = process::run(cmd, python::DRIVER_LIMIT);
        assert!(
            !must_succeed || out.success(),
            "command failed\n{out}\n{}",
            self.diagnostics()
        );
        out
    }
}

/// The first stdout line of a child (stdout piped), or `None` if it printed none within `limit`
/// or exited first; the rest of stdout is drained in the background.
fn first_line(child: &mut KillOnDrop, limit: Duration) -> Option<String> {
    let stdout = child.0.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx.recv_timeout(limit)
        .ok()
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !l.is_empty())
}

/// vibectl 0.11.6's own `vibectl-server`, serving its mini OpenAI mock (`py_server.py`), with
/// the shared secret as `jwt.secret_key` in `$HOME/.config/vibectl/server/config.yaml` (the
/// file 0.11.6's `serve` takes `jwt.*` from, whatever `--config` says; HOME is py_server.py's
/// temp dir).
pub struct PyServer {
    /// The JSON line `py_server.py` printed (`addr`, `url`, `token`, `secret`, ...).
    pub info: Value,
    stdin: Option<ChildStdin>,
    child: KillOnDrop,
    stderr: PathBuf,
    _dir: TempDir,
}

impl PyServer {
    pub fn start(secret: &str) -> PyServer {
        Self::start_with(secret, &[])
    }

    /// As [`PyServer::start`], with more `py_server.py` flags (`--tls`, `--reply TEXT`, ...).
    pub fn start_with(secret: &str, extra: &[&str]) -> PyServer {
        let dir = tempfile::Builder::new()
            .prefix("vibectl-interop-py-")
            .tempdir()
            .expect("temp dir");
        let stderr = dir.path().join("py_server.stderr");
        let mut args = vec![
            "--secret",
            secret,
            "--secret-via",
            "config",
            "--exit-on-stdin-eof",
        ];
        args.extend_from_slice(extra);
        let mut cmd = python::driver("py_server.py", &args);
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", process::describe(&cmd)));
        let mut child = KillOnDrop(child);
        // Keeping stdin open keeps it running; closing it (or this process dying) stops it.
        let stdin = child.0.stdin.take();
        let line = first_line(&mut child, PY_START_LIMIT);
        let info: Value = line
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "0.11.6's server did not start (first line {line:?})\n--- stderr ---\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            });
        PyServer {
            info,
            stdin,
            child,
            stderr,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.info["addr"].as_str().expect("addr")
    }

    /// What `py_server.py` printed on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // EOF on stdin: py_server.py stops its server and mock and removes its work dir.
        drop(self.stdin.take());
        self.child.wait_or_kill(Duration::from_secs(15));
    }
}

/// A temp dir for one run of 0.11.6's CLI: `home/` and `client/` (its config dir).
pub struct ClientDirs {
    pub dir: TempDir,
}

impl ClientDirs {
    pub fn new() -> ClientDirs {
        let dir = tempfile::Builder::new()
            .prefix("vibectl-interop-cli-")
            .tempdir()
            .expect("temp dir");
        for sub in ["home/.config", "client", "llm"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        ClientDirs { dir }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// 0.11.6's `vibectl ARGS`, hermetic: HOME, XDG_CONFIG_HOME, VIBECTL_CLIENT_CONFIG_DIR and
    /// LLM_USER_PATH in this temp dir, nothing else from the caller's environment.
    pub fn vibectl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(python::venv_bin("vibectl"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("VIBECTL_CLIENT_CONFIG_DIR", self.path("client"))
            .env("LLM_USER_PATH", self.path("llm"))
            .env("TERM", "dumb")
            .env("COLUMNS", "200")
            .env("NO_PROXY", "*")
            .env("no_proxy", "*");
        cmd
    }

    /// Write `text` to a file in this dir; its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }
}

/// `path` as a `&str` (temp paths are UTF-8 here).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// A token minted by 0.11.6's own code: `mint_token.py SECRET SUB [ARGS...]`.
pub fn mint(secret: &str, sub: &str, args: &[&str]) -> String {
    let mut all = vec![secret, sub, "--json"];
    all.extend_from_slice(args);
    let json = python::run_ok(&mut python::driver("mint_token.py", &all));
    json["token"].as_str().expect("token").to_owned()
}
