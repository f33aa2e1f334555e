//! Appending to an audit file: each record is one bounded line handed to the kernel in a single
//! `write(2)` on an `O_APPEND` descriptor, so writers in other threads or processes never
//! interleave with it and a crash never leaves half of it behind a later record.
//!
//! Durability: every append ends with `fdatasync`, so a record that `append` returned for
//! survives a power loss too. It costs one disk flush per record, which is small next to the
//! model call or kubectl run the record is about.
//!
//! Permissions: a new file is created 0600 (its new directories 0700). An existing regular file
//! that others can read is tightened to 0600 when we own it; when we do not (chmod fails), it is
//! used as it is with a warning in the log, since whoever shared it chose to.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{AuditError, Record};

/// The most bytes of a string field (a command, a model name, a label...) a line carries; a
/// longer value is cut at a character boundary and ends with [`CUT_MARK`].
pub const MAX_FIELD: usize = 4096;
/// The most bytes of one secret kind in `secrets_types`.
pub const MAX_KIND: usize = 64;
/// The most entries of `secrets_types` a line carries (`secrets_detected` keeps the true count).
pub const MAX_KINDS: usize = 256;
/// The most bytes of a whole line: a record still longer once its fields are cut loses its
/// extra keys (they are replaced by `"truncated": true`).
pub const MAX_LINE: usize = 64 * 1024;
/// What ends a cut field.
pub const CUT_MARK: &str = "...[truncated]";

/// An open audit file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Open `path` for appending: missing parent directories are created (0700) and a missing
    /// file (0600). Fails, naming the path, when the file cannot be written, so callers open it
    /// before calling the model.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir
            && !dir.exists()
        {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir).map_err(|source| AuditError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let mut opts = OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(path).map_err(|source| AuditError::Open {
            path: path.to_owned(),
            source,
        })?;
        tighten(path, &file);
        Ok(AuditLog {
            path: path.to_owned(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line (see the module doc for why it is never torn or interleaved), then
    /// `fdatasync`.
    pub fn append(&self, record: &Record) -> Result<(), AuditError> {
        let line = line(record);
        let write_err = |source| AuditError::Write {
            path: self.path.clone(),
            source,
        };
        let written = loop {
            match (&self.file).write(line.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.map_err(write_err)?,
            }
        };
        if written != line.len() {
            // Only a full disk or a file size limit gets here. End the fragment so the next
            // record starts on a line of its own; a reader reports the fragment as a bad line.
            let _ = (&self.file).write(b"\n");
            return Err(AuditError::ShortWrite {
                path: self.path.clone(),
                written,
                len: line.len(),
            });
        }
        self.file.sync_data().map_err(write_err)
    }
}

/// Make an existing regular file that group or others can reach 0600, when we may.
fn tighten(path: &Path, file: &File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = file.metadata() else { return };
        if !meta.is_file() || meta.permissions().mode() & 0o077 == 0 {
            return;
        }
        if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(
                "the audit log {} is readable by others and cannot be made 0600: {e}",
                path.display()
            );
        }
    }
    let _ = (path, file);
}

/// The record as one line of compact JSON ending in `\n`, at most [`MAX_LINE`] bytes. String
/// fields are cut to [`MAX_FIELD`]; a line still too long (extra keys, or text that JSON
/// escapes to six bytes a character) loses its extra keys, which become `"truncated": true`,
/// and then, if need be, has its fields cut to a tenth.
pub fn line(record: &Record) -> String {
    let mut r = bounded(record, MAX_FIELD, MAX_KINDS);
    let mut text = serde_json::to_string(&r).expect("a record serializes");
    if text.len() >= MAX_LINE {
        r.extra = serde_json::Map::new();
        r.extra
            .insert("truncated".to_owned(), serde_json::Value::Bool(true));
        text = serde_json::to_string(&r).expect("a record serializes");
    }
    if text.len() >= MAX_LINE {
        r = bounded(&r, MAX_FIELD / 10, MAX_KINDS / 10);
        text = serde_json::to_string(&r).expect("a record serializes");
    }
    text.push('\n');
    text
}

/// A copy of `record` with every string field cut to `max` bytes and at most `kinds` secret
/// kinds.
fn bounded(record: &Record, max: usize, kinds: usize) -> Record {
    let mut r = record.clone();
    for field in [&mut r.timestamp, &mut r.request_id, &mut r.event_type] {
        cut(field, max);
    }
    for field in [
        &mut r.proxy_profile,
        &mut r.request_hash,
        &mut r.response_hash,
        &mut r.command_generated,
        &mut r.model_used,
        &mut r.label,
    ]
    .into_iter()
    .flatten()
    {
        cut(field, max);
    }
    r.secrets_types.truncate(kinds);
    for kind in &mut r.secrets_types {
        cut(kind, MAX_KIND);
    }
    r
}

/// Cut `s` to at most `max` bytes (mark included) at a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(CUT_MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(CUT_MARK);
}
