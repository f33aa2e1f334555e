//! Where config files live, and how they are written: atomically, 0600 when they hold a secret.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::ConfigError;

/// The file name inside a config directory.
pub const FILE_NAME: &str = "config.yaml";

/// The config directory of `program` (`client` or `server`), by the first that is set of
/// `$VIBECTL_<PROGRAM>_CONFIG_DIR`, `$VIBECTL_CONFIG_DIR/<program>`,
/// `$XDG_CONFIG_HOME/vibectl/<program>`, `~/.config/vibectl/<program>`.
pub fn config_dir(
    program: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(d) = set(&format!("VIBECTL_{}_CONFIG_DIR", program.to_uppercase())) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = set("VIBECTL_CONFIG_DIR") {
        return Ok(PathBuf::from(d).join(program));
    }
    if let Some(d) = set("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("vibectl").join(program));
    }
    let home = set("HOME").ok_or(ConfigError::NoHome)?;
    Ok(PathBuf::from(home)
        .join(".config")
        .join("vibectl")
        .join(program))
}

/// Read a config file; `None` when it does not exist yet.
pub fn read(path: &Path) -> Result<Option<String>, ConfigError> {
    if let Some(file) = file_in_the_way(path) {
        return Err(ConfigError::DirIsFile { path: file });
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Io {
            action: "read",
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Whether the file at `path` already has the mode a write would give it (0600 for a secret).
pub fn mode_ok(path: &Path, secret: bool) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if secret {
            return std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0);
        }
    }
    let _ = (path, secret);
    true
}

/// The closest ancestor directory of `path` that exists but is not a directory, if any.
fn file_in_the_way(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .find(|d| d.symlink_metadata().is_ok())
        .filter(|d| !d.is_dir())
        .map(Path::to_owned)
}

/// Replace `path` with `contents` atomically: a temp file in the same directory, fsync, rename.
/// A file with a secret is 0600; otherwise an existing file keeps its mode. Missing parent
/// directories are created (0700).
pub fn write_atomic(path: &Path, contents: &str, secret: bool) -> Result<(), ConfigError> {
    let io = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| ConfigError::Io {
            action,
            path: p,
            source,
        }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Some(file) = file_in_the_way(path) {
        return Err(ConfigError::DirIsFile { path: file });
    }
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(io("create directory", dir))?;
    }
    // Refuse early (and change nothing) when the existing file is not writable.
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().readonly()
    {
        return Err(ConfigError::Io {
            action: "write",
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the file is read-only",
            ),
        });
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io("create a temporary file in", dir))?;
    tmp.write_all(contents.as_bytes())
        .map_err(io("write", tmp.path()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if secret {
            0o600
        } else {
            std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o644)
        };
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(io("set permissions on", path))?;
    }
    tmp.as_file().sync_all().map_err(io("sync", path))?;
    // The rename is atomic and the new text was synced before it, so after a crash the file
    // is the old text or the new one, never a torn mix. The directory is not synced: that
    // would only make the rename itself durable, at the cost of a second fsync per write.
    tmp.persist(path).map_err(|e| ConfigError::Io {
        action: "replace",
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}
