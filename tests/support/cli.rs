//! The command-line tests' helpers: a temporary config directory, a command builder for either
//! binary with a clean environment, and the output of a bounded run with the directory
//! redacted.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process;

/// The longest run of one command.
const LIMIT: Duration = Duration::from_secs(60);

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A sample config file under `tests/sample-configs/`.
pub fn sample(rel: &str) -> PathBuf {
    root().join("tests/sample-configs").join(rel)
}

/// Which binary to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bin {
    Client,
    Server,
}

/// A temporary home with a client config directory `home/client` (the file may not exist).
pub struct ConfigDir {
    pub tmp: tempfile::TempDir,
}

impl ConfigDir {
    pub fn new() -> ConfigDir {
        ConfigDir {
            tmp: tempfile::Builder::new()
                .prefix("vibectl-test-")
                .tempdir()
                .expect("a temp dir"),
        }
    }

    /// A config dir whose file starts as `text`.
    pub fn with(text: &str) -> ConfigDir {
        let d = ConfigDir::new();
        d.write(text);
        d
    }

    /// A config dir whose file starts as a copy of a sample.
    pub fn with_sample(rel: &str) -> ConfigDir {
        ConfigDir::with(&std::fs::read_to_string(sample(rel)).expect("the sample exists"))
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The client config directory.
    pub fn dir(&self) -> PathBuf {
        self.path().join("client")
    }

    /// The client config file.
    pub fn file(&self) -> PathBuf {
        self.dir().join("config.yaml")
    }

    pub fn write(&self, text: &str) {
        std::fs::create_dir_all(self.dir()).expect("create the config dir");
        std::fs::write(self.file(), text).expect("write the config file");
    }

    /// The file's bytes, `None` when it does not exist.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.file()).ok()
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(self.file()).expect("the config file exists")
    }

    /// Every entry under the temp dir, for "nothing else was written" checks.
    pub fn listing(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                out.push(e.path());
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out.sort();
        out
    }

    /// `vibectl` with this directory as `VIBECTL_CLIENT_CONFIG_DIR`.
    pub fn vibectl(&self) -> Command {
        let mut c = clean(Bin::Client, self.path());
        c.env("VIBECTL_CLIENT_CONFIG_DIR", self.dir());
        c
    }

    /// `vibectl-server --config <this file>`.
    pub fn server(&self) -> Command {
        let mut c = clean(Bin::Server, self.path());
        c.arg("--config").arg(self.file());
        c
    }

    /// Run `vibectl ARGS` (client) and collect the outcome.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.vibectl().args(args), self.path())
    }

    /// Run `vibectl-server --config FILE ARGS`.
    pub fn run_server(&self, args: &[&str]) -> Run {
        Run::of(self.server().args(args), self.path())
    }

    /// Run a command that must fail with exit code 1 and leave the directory untouched: the
    /// file byte-identical (or still absent) and no other file created.
    pub fn fails(&self, args: &[&str]) -> Run {
        self.fails_with(Bin::Client, args)
    }

    pub fn fails_with(&self, bin: Bin, args: &[&str]) -> Run {
        let before = (self.bytes(), self.listing());
        let run = match bin {
            Bin::Client => self.run(args),
            Bin::Server => self.run_server(args),
        };
        assert_eq!(
            run.code,
            1,
            "`{}` should exit 1\n{}",
            args.join(" "),
            run.transcript()
        );
        assert!(
            run.stderr.starts_with("error: "),
            "stderr starts with `error: `\n{}",
            run.transcript()
        );
        assert_eq!(
            (self.bytes(), self.listing()),
            before,
            "`{}` changed the config directory",
            args.join(" ")
        );
        run
    }
}

/// A binary with an environment that cannot reach the developer's own config.
pub fn clean(bin: Bin, home: &Path) -> Command {
    let exe = match bin {
        Bin::Client => env!("CARGO_BIN_EXE_vibectl"),
        Bin::Server => env!("CARGO_BIN_EXE_vibectl-server"),
    };
    let mut c = Command::new(exe);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("VIBECTL_") || k == "XDG_CONFIG_HOME" || k == "COMPLETE" {
            c.env_remove(k);
        }
    }
    c.env("HOME", home).env("NO_COLOR", "1");
    c
}

/// What a command did: exit code and its output, the temp dir replaced by `[DIR]`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Run `cmd` to its end (killed and failed after [`LIMIT`]).
    pub fn of(cmd: &mut Command, redact: &Path) -> Run {
        let out = process::run(cmd, LIMIT);
        let clean = |b: &str| b.replace(redact.to_string_lossy().as_ref(), "[DIR]");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: clean(&out.stdout),
            stderr: clean(&out.stderr),
        }
    }

    /// Must have exited 0; returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success\n{}", self.transcript());
        &self.stdout
    }

    /// Exit code, stdout and stderr in one text, for snapshots and failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
