//! Reading an audit file tolerantly: every line that is a record, and every other non-blank
//! line by number with the reason, so one torn or foreign line never hides the rest. The file
//! is only read, never repaired.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{AuditError, Record};

/// The most bytes of a bad line's reason.
const MAX_WHY: usize = 200;

/// What a file holds.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Contents {
    /// The records in file order, each with its line number (from 1).
    pub records: Vec<(usize, Record)>,
    /// The non-blank lines that are not records, with why.
    pub bad: Vec<(usize, String)>,
    /// The number of lines, blank ones included.
    pub lines: usize,
}

/// Read `path`: every line that parses, plus the bad ones by line number (the file is never
/// rewritten). A missing file is [`AuditError::NotFound`].
pub fn read(path: &Path) -> Result<Contents, AuditError> {
    let file = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            AuditError::NotFound {
                path: path.to_owned(),
            }
        } else {
            AuditError::Read {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let mut out = Contents::default();
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| AuditError::Read {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        out.lines += 1;
        let ended = buf.last() == Some(&b'\n');
        match parse_line(&buf) {
            Ok(None) => {}
            Ok(Some(record)) => out.records.push((out.lines, record)),
            Err(mut why) => {
                if !ended {
                    why.push_str(" (the last line, without a newline: possibly a torn write)");
                }
                out.bad.push((out.lines, why));
            }
        }
    }
    Ok(out)
}

/// One line: `None` when blank, else a record or why it is not one.
fn parse_line(bytes: &[u8]) -> Result<Option<Record>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str::<Record>(text).map(Some).map_err(|e| {
        let mut why = e.to_string();
        if why.len() > MAX_WHY {
            let mut end = MAX_WHY;
            while !why.is_char_boundary(end) {
                end -= 1;
            }
            why.truncate(end);
        }
        why
    })
}
