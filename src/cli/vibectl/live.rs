//! The live display of commands that keep running (`logs -f`, `get -w`, `events -w`, `wait`,
//! `port-forward`): kubectl's lines kept in a bounded buffer (`live_display.*`), shown through
//! the filter regex, as plain lines when stdout is not a terminal or as a bounded view with
//! keys (exit, wrap, pause, save, filter) when it is; saved to `live_display.save_dir` on a key
//! press; summarized when the run ends.

mod view;

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use regex::Regex;

use super::kubectl;
use super::session::Session;
use crate::cli::{CmdError, CmdResult};
use crate::config::ClientConfig;
use crate::config::generated::client::key;

/// Longest line kept, in bytes; a longer one is cut into pieces of this size.
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Most bytes the buffer keeps whatever `live_display.stream_buffer_max_lines` says.
const MAX_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// Longest filter regex accepted, in characters (typed or configured).
const MAX_FILTER_CHARS: usize = 1_000;
/// Most of what was seen that goes to the summary, in bytes (the newest part).
const SUMMARY_TAIL: usize = 64 * 1024;

/// `live_display.*` for one run.
pub struct Options {
    pub max_lines: usize,
    pub wrap: bool,
    pub buffer_lines: usize,
    pub filter: Option<Filter>,
    pub save_dir: PathBuf,
    /// What the saved files are named after (`logs_web-1`).
    pub name: String,
}

/// A compiled filter and the text it was written as.
#[derive(Clone)]
pub struct Filter {
    pub text: String,
    re: Regex,
}

impl Filter {
    /// Compile `text`; the error says what is wrong with it.
    pub fn new(text: &str) -> Result<Filter, String> {
        if text.chars().count() > MAX_FILTER_CHARS {
            return Err(format!("longer than {MAX_FILTER_CHARS} characters"));
        }
        let re = regex::RegexBuilder::new(text)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| e.to_string().lines().last().unwrap_or("").trim().to_owned())?;
        Ok(Filter {
            text: text.to_owned(),
            re,
        })
    }

    pub fn matches(&self, line: &str) -> bool {
        self.re.is_match(line)
    }
}

impl Options {
    /// The options `cfg` gives a run of `kubectl ARGS`; a bad filter regex is an error naming
    /// its key.
    pub fn from_config(cfg: &ClientConfig, args: &[String]) -> Result<Options, CmdError> {
        let d = &cfg.live_display;
        let filter = match d.default_filter_regex.as_deref().filter(|f| !f.is_empty()) {
            None => None,
            Some(text) => Some(Filter::new(text).map_err(|why| {
                CmdError::new(format!(
                    "{} is not a valid regular expression: {why}",
                    key::LIVE_DISPLAY_DEFAULT_FILTER_REGEX
                ))
                .with_hint(format!(
                    "fix it (for example `error|warn`), or remove it: vibectl config unset {}",
                    key::LIVE_DISPLAY_DEFAULT_FILTER_REGEX
                ))
            })?),
        };
        Ok(Options {
            max_lines: usize::try_from(d.max_lines).unwrap_or(1).max(1),
            wrap: d.wrap_text,
            buffer_lines: usize::try_from(d.stream_buffer_max_lines)
                .unwrap_or(1)
                .max(1),
            filter,
            save_dir: d.save_dir.clone(),
            name: file_name_part(args),
        })
    }
}

/// `logs_web-1` from `logs -f web-1`: the words that are not flags, made safe for a file name.
fn file_name_part(args: &[String]) -> String {
    let words: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .take(3)
        .collect();
    let mut name: String = words
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if name.is_empty() {
        name.push_str("kubectl");
    }
    name
}

/// The lines of a run: every line seen (within the bounds), split from kubectl's output.
pub struct Lines {
    lines: VecDeque<String>,
    bytes: usize,
    max: usize,
    /// The unfinished last line of stdout and of stderr.
    partial: [Vec<u8>; 2],
    /// Lines seen in all, and how many of them the bounds dropped.
    pub seen: u64,
    pub dropped: u64,
}

impl Lines {
    pub fn new(max: usize) -> Lines {
        Lines {
            lines: VecDeque::new(),
            bytes: 0,
            max,
            partial: [Vec::new(), Vec::new()],
            seen: 0,
            dropped: 0,
        }
    }

    /// Take in a piece of stdout; the complete lines it ends are returned (and kept).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.feed_from(0, bytes)
    }

    /// [`Lines::feed`] for stdout (0) or stderr (1), each with its own unfinished line.
    fn feed_from(&mut self, stream: usize, bytes: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let raw = std::mem::take(&mut self.partial[stream]);
                done.push(self.push(&raw));
            } else {
                self.partial[stream].push(b);
                if self.partial[stream].len() >= MAX_LINE_BYTES {
                    let raw = std::mem::take(&mut self.partial[stream]);
                    done.push(self.push(&raw));
                }
            }
        }
        done
    }

    /// The last lines when the output did not end with a newline.
    pub fn flush(&mut self) -> Vec<String> {
        let mut done = Vec::new();
        for stream in 0..2 {
            if !self.partial[stream].is_empty() {
                let raw = std::mem::take(&mut self.partial[stream]);
                done.push(self.push(&raw));
            }
        }
        done
    }

    fn push(&mut self, raw: &[u8]) -> String {
        let mut line = String::from_utf8_lossy(raw).into_owned();
        if line.ends_with('\r') {
            line.pop();
        }
        self.seen += 1;
        self.bytes += line.len();
        self.lines.push_back(line.clone());
        while self.lines.len() > self.max || self.bytes > MAX_BUFFER_BYTES {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            self.dropped += 1;
        }
        line
    }

    /// The kept lines that pass `filter`, oldest first.
    pub fn shown<'a>(&'a self, filter: Option<&'a Filter>) -> impl Iterator<Item = &'a str> {
        self.lines
            .iter()
            .map(String::as_str)
            .filter(move |l| filter.is_none_or(|f| f.matches(l)))
    }

    /// The newest [`SUMMARY_TAIL`] bytes of the kept lines that pass `filter`.
    pub fn tail(&self, filter: Option<&Filter>) -> String {
        let shown: Vec<&str> = self.shown(filter).collect();
        let mut start = shown.len();
        let mut size = 0;
        while start > 0 && size + shown[start - 1].len() < SUMMARY_TAIL {
            start -= 1;
            size += shown[start].len() + 1;
        }
        let mut text = shown[start..].join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text
    }
}

/// What the user asked for with a key.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyAction {
    Continue,
    Exit,
}

/// The display of one run: plain lines, or the terminal view.
pub struct Live {
    pub opts: Options,
    pub lines: Lines,
    /// The filter in force (the configured one, or one typed while running).
    pub filter: Option<Filter>,
    view: Option<view::View>,
}

impl Live {
    /// The terminal view when stdin and stdout are terminals, else plain lines.
    pub fn start(opts: Options) -> Live {
        let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
        let view = tty.then(|| view::View::start(&opts));
        Live {
            lines: Lines::new(opts.buffer_lines),
            filter: opts.filter.clone(),
            opts,
            view,
        }
    }

    /// The keys typed on the terminal, when there is a view.
    pub fn keys(&mut self) -> Option<&mut tokio::sync::mpsc::Receiver<u8>> {
        self.view.as_mut().map(view::View::keys)
    }

    /// Take in a piece of kubectl's output and show it.
    pub fn feed(&mut self, bytes: &[u8]) {
        let done = self.lines.feed(bytes);
        self.show(done);
    }

    fn show(&mut self, done: Vec<String>) {
        if done.is_empty() {
            return;
        }
        match &mut self.view {
            Some(v) => v.draw(&self.lines, self.filter.as_ref()),
            None => {
                let mut out = std::io::stdout().lock();
                for l in done {
                    if self.filter.as_ref().is_none_or(|f| f.matches(&l)) {
                        let _ = writeln!(out, "{l}");
                    }
                }
                let _ = out.flush();
            }
        }
    }

    /// Whether kubectl's stderr comes here too: on a terminal the view owns the screen, so
    /// stderr lines show in it (and go to the summary); otherwise stderr stays kubectl's.
    pub fn takes_stderr(&self) -> bool {
        self.view.is_some()
    }

    /// Take in a piece of kubectl's stderr (see [`Live::takes_stderr`]).
    pub fn feed_stderr(&mut self, bytes: &[u8]) {
        let done = self.lines.feed_from(1, bytes);
        self.show(done);
    }

    /// A key typed on the terminal.
    pub fn key(&mut self, k: u8) -> KeyAction {
        let Some(v) = &mut self.view else {
            return KeyAction::Continue;
        };
        let action = v.key(k, &mut self.filter, &self.lines, &self.opts);
        v.draw(&self.lines, self.filter.as_ref());
        action
    }

    /// The run is over: show the last line, leave the terminal as it was.
    pub fn finish(&mut self) {
        let last = self.lines.flush();
        self.show(last);
        if let Some(v) = self.view.take() {
            v.finish();
        }
    }

    /// The line that closes a run: how it ended, how long it took, the lines it streamed.
    pub fn ended(&self, interrupted: bool, took: std::time::Duration) -> String {
        let how = if interrupted {
            "stopped by the user"
        } else {
            "kubectl exited"
        };
        let mut s = format!(
            "Ended ({how}) after {:.1}s: {} lines streamed",
            took.as_secs_f64(),
            self.lines.seen
        );
        if let Some(f) = &self.filter {
            s.push_str(&format!(
                ", {} kept that match '{}'",
                self.lines.shown(Some(f)).count(),
                f.text
            ));
        }
        if self.lines.dropped > 0 {
            s.push_str(&format!(
                ", the oldest {} dropped ({})",
                self.lines.dropped,
                key::LIVE_DISPLAY_STREAM_BUFFER_MAX_LINES
            ));
        }
        s
    }

    /// What the user saw, for the summary.
    pub fn seen(&self) -> String {
        self.lines.tail(self.filter.as_ref())
    }
}

/// Write the kept lines that pass `filter` to a new file in `dir` (created when missing):
/// `file` when given (a plain name, never overwriting), else one named after the run (`name`)
/// and the time. The file is readable by its owner only.
pub fn save(
    lines: &Lines,
    filter: Option<&Filter>,
    dir: &Path,
    file: Option<&str>,
    name: &str,
) -> Result<PathBuf, String> {
    if let Some(f) = file
        && (f.contains(['/', '\\', '\0']) || f == "." || f == ".." || f.len() > 255)
    {
        return Err(format!("`{f}` is not a plain file name"));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]_[hour][minute][second]"
        ))
        .unwrap_or_default();
    let mut text = lines.shown(filter).collect::<Vec<_>>().join("\n");
    text.push('\n');
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(f) = file {
        let path = dir.join(f);
        return match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(format!("{} exists; it was not overwritten", path.display()))
            }
            Err(e) => Err(format!("{}: {}", path.display(), e.error)),
        };
    }
    for n in 1..=100 {
        let file = if n == 1 {
            format!("vibectl_{name}_{stamp}.log")
        } else {
            format!("vibectl_{name}_{stamp}-{n}.log")
        };
        let path = dir.join(file);
        match tmp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => return Err(format!("{}: {}", path.display(), e.error)),
        }
    }
    Err(format!("{}: too many saves this second", dir.display()))
}

/// Run `real` (shown as `line`) with the live display until it ends or the user stops it, then
/// summarize what was seen. `planned` says the model planned it (for the audit log).
pub async fn watch(
    session: &Session,
    line: &str,
    real: &[String],
    request: Option<&str>,
    planned: bool,
) -> CmdResult {
    let opts = Options::from_config(&session.cfg, real)?;
    let started = std::time::Instant::now();
    let mut live = Live::start(opts);
    let followed = kubectl::follow(&session.cfg, real, &mut live).await;
    live.finish();
    let code = followed.as_ref().ok().and_then(|f| f.code);
    session.guard.audit_run(line, planned, true, code)?;
    let followed = followed?;
    if followed.interrupted {
        eprintln!();
    }
    crate::cli::out(&format!(
        "{}\n",
        live.ended(followed.interrupted, started.elapsed())
    ));
    super::plan::summarize(session, line, &live.seen(), request, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_bounded_and_filtered() {
        let mut l = Lines::new(3);
        assert_eq!(l.feed(b"a1\nb2\r\nc"), ["a1", "b2"]);
        assert_eq!(l.feed(b"3\nd4\ne5\n"), ["c3", "d4", "e5"]);
        assert_eq!(l.seen, 5);
        assert_eq!(l.dropped, 2);
        let f = Filter::new("[ce]").expect("regex");
        assert_eq!(l.tail(Some(&f)), "c3\ne5\n");
        assert_eq!(l.tail(None), "c3\nd4\ne5\n");
        assert_eq!(l.feed(&vec![b'x'; MAX_LINE_BYTES + 1]).len(), 1);
        assert_eq!(l.flush(), ["x"]);
    }

    #[test]
    fn saved_file_names_are_safe() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            file_name_part(&v(&["logs", "-f", "pod/web-1"])),
            "logs_pod_web-1"
        );
        assert_eq!(file_name_part(&v(&["-w"])), "kubectl");
        assert!(Filter::new("(").is_err());
    }
}
