//! The Python peer: vibectl 0.11.6 from PyPI in a venv made by `scripts/setup-python-peer`, and
//! the interop drivers in `scripts/interop/`.
//!
//! The venv is set up once per test process (the first run downloads from PyPI, later runs reuse
//! it). There is no silent skip: when Python or PyPI is missing, every test that needs the peer
//! fails with the script's own message and what to do about it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::process::{self, Output};

/// Longest wait for `scripts/setup-python-peer` (a first install downloads from PyPI).
const SETUP_LIMIT: Duration = Duration::from_secs(600);
/// Longest run of one interop driver (each takes about half a second).
pub const DRIVER_LIMIT: Duration = Duration::from_secs(60);

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/interop/NAME`.
pub fn script(name: &str) -> PathBuf {
    repo().join("scripts").join("interop").join(name)
}

/// The venv holding vibectl 0.11.6 (`scripts/setup-python-peer`, run once per test process).
pub fn venv() -> &'static Path {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match VENV.get_or_init(setup) {
        Ok(path) => path,
        Err(message) => panic!("{message}"),
    }
}

/// The venv's python.
pub fn python() -> PathBuf {
    venv().join("bin").join("python")
}

/// The venv's `bin/NAME` (`vibectl`, `vibectl-server`).
pub fn venv_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

fn setup() -> Result<PathBuf, String> {
    // Another test process (another `cargo test` in the same tree) may be creating the same
    // venv: take turns.
    let lock_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(lock_dir).map_err(|e| format!("{}: {e}", lock_dir.display()))?;
    let lock_path = lock_dir.join("setup-python-peer.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    let script = repo().join("scripts").join("setup-python-peer");
    let out = process::run(Command::new(&script).current_dir(repo()), SETUP_LIMIT);
    drop(lock);
    let path = PathBuf::from(out.stdout.trim());
    if !out.success() || !path.join("bin").join("python").exists() {
        return Err(format!(
            "the interop tests need vibectl 0.11.6 (Python) and {} could not provide it.\n\
             It needs python3 >= 3.11 with the venv module (or VIBECTL_PY_PYTHON naming one), \
             and network access to PyPI on its first run (or VIBECTL_PY_VENV naming a prepared \
             venv).\n{out}",
            script.display()
        ));
    }
    Ok(path)
}

/// A command running `scripts/interop/SCRIPT ARGS` with the venv's python, in a minimal
/// environment (the drivers point HOME and the config dirs at temp dirs themselves).
pub fn driver(script_name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(script(script_name))
        .args(args)
        .current_dir(repo())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "*")
        .env("no_proxy", "*");
    cmd
}

/// Run a driver to completion (bounded by [`DRIVER_LIMIT`]) and parse the JSON document it
/// prints; panics when stdout is not JSON. The exit status is left to the caller.
pub fn run_json(cmd: &mut Command) -> (Output, Value) {
    let out = process::run(cmd, DRIVER_LIMIT);
    let json = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("the driver did not print one JSON document ({e})\n{out}"));
    (out, json)
}

/// Run a driver that must succeed (exit 0, `"ok": true` when it reports one); its JSON.
pub fn run_ok(cmd: &mut Command) -> Value {
    let (out, json) = run_json(cmd);
    assert!(
        out.success() && json.get("ok").is_none_or(|ok| ok == true),
        "the driver reported a failure\n{out}"
    );
    json
}
