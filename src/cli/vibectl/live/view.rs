//! The terminal view of the live display: the last `live_display.max_lines` lines that pass the
//! filter, wrapped or cut at the terminal's width, redrawn in place under a line of keys; the
//! keys read from the terminal in raw mode (no echo, no line editing; Ctrl-C still interrupts).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Filter, KeyAction, Lines, Options};

/// Keys waiting to be handled, at most.
const KEY_QUEUE: usize = 64;
/// How often the key reader looks whether the view has ended, in milliseconds.
const KEY_POLL_MS: i32 = 100;
/// Longest text typed at a prompt (the filter).
const MAX_INPUT_CHARS: usize = 200;

/// The question being typed.
enum Input {
    Filter(String),
    /// A file name in `live_display.save_dir`; empty: the suggested one.
    Save(String),
}

pub struct View {
    max_lines: usize,
    wrap: bool,
    /// What suggested file names are made of.
    name: String,
    /// While paused, how many lines had been seen when the pause began.
    paused: Option<u64>,
    input: Option<Input>,
    status: Option<String>,
    /// Rows the last frame took, to draw the next one over it, and of them the lines'.
    height: usize,
    body_height: usize,
    keys: tokio::sync::mpsc::Receiver<u8>,
    stop: Arc<AtomicBool>,
    saved: Option<libc::termios>,
}

impl View {
    pub fn start(opts: &Options) -> View {
        let saved = raw_mode();
        let (tx, rx) = tokio::sync::mpsc::channel(KEY_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || read_keys(&tx, &flag));
        let mut v = View {
            max_lines: opts.max_lines,
            name: opts.name.clone(),
            wrap: opts.wrap,
            paused: None,
            input: None,
            status: None,
            height: 0,
            body_height: 0,
            keys: rx,
            stop,
            saved,
        };
        v.draw(&Lines::new(1), opts.filter.as_ref());
        v
    }

    pub fn keys(&mut self) -> &mut tokio::sync::mpsc::Receiver<u8> {
        &mut self.keys
    }

    pub fn key(
        &mut self,
        k: u8,
        filter: &mut Option<Filter>,
        lines: &Lines,
        opts: &Options,
    ) -> KeyAction {
        if let Some(input) = &mut self.input {
            let text = match input {
                Input::Filter(t) | Input::Save(t) => t,
            };
            match k {
                b'\r' | b'\n' => {
                    let text = std::mem::take(text);
                    let done = self.input.take();
                    self.status = Some(match done {
                        Some(Input::Filter(_)) => set_filter(filter, &text),
                        _ => save_status(lines, filter.as_ref(), opts, &text),
                    });
                }
                0x1b => {
                    self.input = None;
                    self.status = Some("cancelled".to_owned());
                }
                0x7f | 0x08 => {
                    text.pop();
                }
                c if (0x20..0x7f).contains(&c) && text.chars().count() < MAX_INPUT_CHARS => {
                    text.push(char::from(c));
                }
                _ => {}
            }
            return KeyAction::Continue;
        }
        match k.to_ascii_lowercase() {
            b'e' | b'q' => return KeyAction::Exit,
            b'w' => self.wrap = !self.wrap,
            b'p' => {
                self.paused = match self.paused {
                    Some(_) => None,
                    None => Some(lines.seen),
                }
            }
            b's' => self.input = Some(Input::Save(String::new())),
            b'f' => self.input = Some(Input::Filter(String::new())),
            _ => {}
        }
        KeyAction::Continue
    }

    /// Draw the view over the last frame (nothing new shows while paused, but the keys do).
    pub fn draw(&mut self, lines: &Lines, filter: Option<&Filter>) {
        let (width, rows) = size();
        let shown: Vec<&str> = lines.shown(filter).collect();
        let start = shown.len().saturating_sub(self.max_lines);
        let mut body: Vec<String> = Vec::new();
        for l in &shown[start..] {
            let clean = printable(l);
            if self.wrap {
                let chars: Vec<char> = clean.chars().collect();
                if chars.is_empty() {
                    body.push(String::new());
                }
                for piece in chars.chunks(width) {
                    body.push(piece.iter().collect());
                }
            } else {
                body.push(clean.chars().take(width).collect());
            }
        }
        // Keep the frame within the terminal so drawing over it stays in place.
        let room = rows.saturating_sub(3).max(1);
        if body.len() > room {
            body.drain(..body.len() - room);
        }
        let on = |b: bool, yes: &str, no: &str| if b { yes } else { no }.to_owned();
        let keys = format!(
            "[E]xit | [W]rap: {} | [P]ause: {} | [S]ave | [F]ilter: {}",
            on(self.wrap, "on", "off"),
            match self.paused {
                None => "running".to_owned(),
                Some(at) => format!("paused, {} new", lines.seen.saturating_sub(at)),
            },
            filter.map_or("off".to_owned(), |f| format!("'{}'", f.text))
        );
        let mut foot = fit(&keys, width);
        let last = match &self.input {
            Some(Input::Filter(t)) => Some(format!("Filter (empty clears, Esc keeps): {t}")),
            Some(Input::Save(t)) => Some(format!(
                "Save as (empty: vibectl_{}_TIME.log): {t}",
                self.name
            )),
            None => self.status.clone(),
        };
        if let Some(last) = last {
            // The prompt or the status, wrapped: it may be longer than the terminal is wide.
            let chars: Vec<char> = last.chars().collect();
            foot.extend(chars.chunks(width).map(|c| c.iter().collect::<String>()));
        }
        if self.paused.is_some() && self.height > 0 {
            // Only the footer changes while paused: keep the lines as they were.
            return self.redraw_footer(&foot, width);
        }
        let mut frame = String::new();
        self.clear(&mut frame);
        for row in body.iter().chain(foot.iter()) {
            let row: String = row.chars().take(width).collect();
            frame.push_str(&row);
            frame.push('\n');
        }
        self.height = body.len() + foot.len();
        self.body_height = body.len();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(frame.as_bytes());
        let _ = out.flush();
    }

    fn clear(&self, frame: &mut String) {
        if self.height > 0 {
            frame.push_str(&format!("\x1b[{}F", self.height));
        } else {
            frame.push('\r');
        }
        frame.push_str("\x1b[J");
    }

    fn redraw_footer(&mut self, foot: &[String], width: usize) {
        let mut frame = String::new();
        let up = self.height - self.body_height;
        if up > 0 {
            frame.push_str(&format!("\x1b[{up}F"));
        }
        frame.push_str("\x1b[J");
        for row in foot {
            let row: String = row.chars().take(width).collect();
            frame.push_str(&row);
            frame.push('\n');
        }
        self.height = self.body_height + foot.len();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(frame.as_bytes());
        let _ = out.flush();
    }

    /// Leave the last frame on the screen and the terminal as it was.
    pub fn finish(self) {}
}

impl Drop for View {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.saved {
            // SAFETY: fd 0 and a termios read from it by tcgetattr.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }
}

/// Turn off echo and line editing on the terminal of stdin (signals stay on); the settings to
/// restore, or `None` when they cannot be read.
fn raw_mode() -> Option<libc::termios> {
    // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr on fd 0.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
        return None;
    }
    let saved = t;
    t.c_lflag &= !(libc::ICANON | libc::ECHO);
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    // SAFETY: fd 0 with a termios derived from its own settings.
    unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
    Some(saved)
}

/// Send each byte typed on stdin until `stop` is set or the view stops listening.
fn read_keys(tx: &tokio::sync::mpsc::Sender<u8>, stop: &AtomicBool) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let mut fd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut fd, 1, KEY_POLL_MS) };
        if ready <= 0 || stop.load(Ordering::Relaxed) {
            continue;
        }
        // SAFETY: reading into a buffer of its own length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        for &b in &buf[..n as usize] {
            if tx.blocking_send(b).is_err() {
                return;
            }
        }
    }
}

/// The terminal's columns and rows (80x24 when it does not say).
fn size() -> (usize, usize) {
    // SAFETY: a zeroed winsize is a valid out-parameter for TIOCGWINSZ on fd 1.
    let mut w: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut w) } == 0;
    let cols = if ok && w.ws_col > 0 { w.ws_col } else { 80 };
    let rows = if ok && w.ws_row > 0 { w.ws_row } else { 24 };
    (usize::from(cols), usize::from(rows))
}

/// Use the typed filter (empty: none); the status to show.
fn set_filter(filter: &mut Option<Filter>, text: &str) -> String {
    if text.is_empty() {
        *filter = None;
        return "filter cleared".to_owned();
    }
    match Filter::new(text) {
        Ok(f) => {
            *filter = Some(f);
            format!("filter set to '{text}'")
        }
        Err(why) => format!("not a valid regex, filter kept: {why}"),
    }
}

/// Save under the typed name (empty: the suggested one); the status to show.
fn save_status(lines: &Lines, filter: Option<&Filter>, opts: &Options, text: &str) -> String {
    let name = Some(text.trim()).filter(|t| !t.is_empty());
    match super::save(lines, filter, &opts.save_dir, name, &opts.name) {
        Ok(path) => format!("saved to {}", path.display()),
        Err(why) => format!(
            "not saved ({}): {why}",
            crate::config::generated::client::key::LIVE_DISPLAY_SAVE_DIR
        ),
    }
}

/// The key line broken between its ` | ` parts so that each row fits in `width`.
fn fit(keys: &str, width: usize) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    for part in keys.split(" | ") {
        match rows.last_mut() {
            Some(row) if row.chars().count() + 3 + part.chars().count() <= width => {
                row.push_str(" | ");
                row.push_str(part);
            }
            _ => rows.push(part.to_owned()),
        }
    }
    rows
}

/// `line` without control characters (a tab becomes a space), so widths count.
fn printable(line: &str) -> String {
    line.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}
