//! The commands that run kubectl and call the model, end to end: the `vibectl` binary with a
//! fake kubectl (a shell script that records its arguments) and the mock provider, called
//! directly or through our `vibectl-server` binary. Every process is bounded by a timeout and
//! all traffic stays on 127.0.0.1.

mod apply;
mod audit;
mod auto;
mod check;
mod commands;
mod confirm;
mod edit;
mod errors;
mod flags;
mod follow;
mod instructions;
mod keys;
mod live;
mod markup;
mod memory;
mod memory_freeze;
mod plugins;
mod port_forward;
mod profile_security;
mod prompts;
pub(crate) mod proxy;
mod read_only;
mod recovery;
mod redaction;
pub(crate) mod scripted;
mod theme;
mod theme_cmd;
mod verbs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;
use vibectl::config::generated::client::key;
use vibectl::llm::ProviderKind;

use crate::support::kube_api::KubeApi;
use crate::support::mock::MockProvider;
use crate::support::process::{self, Output};
use crate::support::yaml;

/// Longest run of one `vibectl` command.
pub const LIMIT: Duration = Duration::from_secs(60);
/// The API key the mock provider is started with (when it checks keys).
pub const API_KEY: &str = "sk-client-test";
/// The model the client asks for; the OpenAI prefix rule routes it.
pub const MODEL: &str = "gpt-4.1";
/// What the fake kubectl prints for `get pods`.
pub const PODS: &str = "NAME    READY   STATUS    RESTARTS   AGE\n\
                        web-1   1/1     Running   0          5m\n\
                        web-2   1/1     Running   3          5m\n";
/// The config file's comments, which every edit must keep.
pub const COMMENT: &str = "# my vibectl settings";

/// Env vars of the developer's machine that must not reach the binary under test.
const SCRUB: &[&str] = &[
    "XDG_CONFIG_HOME",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OLLAMA_HOST",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "COMPLETE",
];

/// A temp home with a client config dir and a fake kubectl.
pub struct Client {
    pub tmp: TempDir,
    /// Extra env for every run.
    pub env: Vec<(String, String)>,
}

impl Client {
    /// A home whose fake kubectl prints `stdout` and `stderr` and exits with `code`.
    pub fn new(stdout: &str, stderr: &str, code: i32) -> Client {
        let tmp = tempfile::Builder::new()
            .prefix("vibectl-client-")
            .tempdir()
            .expect("temp dir");
        let c = Client {
            tmp,
            env: Vec::new(),
        };
        std::fs::create_dir_all(c.dir()).expect("config dir");
        std::fs::write(c.path().join("kubectl-stdout"), stdout).expect("write");
        std::fs::write(c.path().join("kubectl-stderr"), stderr).expect("write");
        let script = format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$*\" >> '{dir}/kubectl-args'\n\
             cat '{dir}/kubectl-stdout'\n\
             cat '{dir}/kubectl-stderr' >&2\n\
             exit {code}\n",
            dir = c.path().display()
        );
        write_executable(&c.kubectl(), &script);
        c
    }

    /// A fake kubectl that lists two pods.
    pub fn with_pods() -> Client {
        Client::new(PODS, "", 0)
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn dir(&self) -> PathBuf {
        self.path().join("client")
    }

    pub fn file(&self) -> PathBuf {
        self.dir().join("config.yaml")
    }

    pub fn kubectl(&self) -> PathBuf {
        self.path().join("fake-kubectl")
    }

    /// Each kubectl run's arguments, one line per run.
    pub fn kubectl_runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("kubectl-args"))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// A config using the fake kubectl, [`MODEL`], and the mock as the OpenAI endpoint (with
    /// [`API_KEY`] unless `key` is false); `extra` is appended as is.
    pub fn configure(&self, mock: &MockProvider, key: bool, extra: &str) {
        let mut pairs = vec![
            (
                key::CORE_KUBECTL_COMMAND,
                format!("{}   # the fake one", self.kubectl().display()),
            ),
            (key::LLM_MODEL, MODEL.to_owned()),
        ];
        if key {
            pairs.push((key::PROVIDERS_OPENAI_KEY, API_KEY.to_owned()));
        }
        pairs.push((
            key::PROVIDERS_OPENAI_BASE_URL,
            mock.base_url(ProviderKind::OpenAi),
        ));
        self.write(&format!("{COMMENT}\n{}{extra}", yaml::config(&pairs)));
    }

    pub fn write(&self, text: &str) {
        std::fs::write(self.file(), text).expect("write the config");
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(self.file()).expect("the config exists")
    }

    /// `vibectl ARGS` in a clean environment with this config dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vibectl"));
        self.environment(&mut cmd);
        cmd.args(args);
        cmd
    }

    /// Give `cmd` a clean environment with this home and config dir, run in this home.
    pub fn environment(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("VIBECTL_") {
                cmd.env_remove(k);
            }
        }
        for k in SCRUB {
            cmd.env_remove(k);
        }
        cmd.env("HOME", self.path())
            .env("NO_COLOR", "1")
            .env("VIBECTL_CLIENT_CONFIG_DIR", self.dir())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.path());
    }

    /// Make this home's kubectl the real one (found on PATH; scripts/ci-deps installs it)
    /// talking to `api`, behind a wrapper that records its arguments like the fake one.
    pub fn use_real_kubectl(&self, api: &KubeApi) {
        let real = std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("kubectl"))
                    .find(|k| k.is_file())
            })
            .expect("no kubectl on PATH: run scripts/ci-deps (it installs kubernetes-client)");
        let kubeconfig = api.kubeconfig(self.path());
        let script = format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$*\" >> '{dir}/kubectl-args'\n\
             KUBECONFIG='{kubeconfig}' exec '{real}' \"$@\"\n",
            dir = self.path().display(),
            kubeconfig = kubeconfig.display(),
            real = real.display()
        );
        write_executable(&self.kubectl(), &script);
    }

    pub fn run(&self, args: &[&str]) -> Output {
        process::run(&mut self.command(args), LIMIT)
    }

    /// [`Client::run`] with its own limit, for a run that does much work in a debug build.
    pub fn run_within(&self, args: &[&str], limit: Duration) -> Output {
        process::run(&mut self.command(args), limit)
    }

    /// Run a command that must fail with exit code 1, an `error:` line, and no change to
    /// the config file.
    pub fn fails(&self, args: &[&str]) -> Output {
        let before = std::fs::read(self.file()).ok();
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "should exit 1\n{out}");
        assert!(out.stderr.contains("error: "), "no error line\n{out}");
        assert_eq!(
            std::fs::read(self.file()).ok(),
            before,
            "a failed command changed the config file\n{out}"
        );
        out
    }
}

pub fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write the script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// A plan in the shape of `prompts::plan_schema`, as the model would answer.
pub fn plan_json(commands: &[&str], explanation: &str) -> String {
    serde_json::json!({"commands": commands, "explanation": explanation}).to_string()
}
