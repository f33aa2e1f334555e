//! The model's markup (Rich's `[bold]`, `[red]...[/red]`, `[/]`: the tags the prompts offer,
//! see `prompts::blocks::MARKUP_TAGS`) turned into terminal colours by `display.theme`, or
//! removed when stdout gets no colour (not a terminal, `display.colored_output` off,
//! `NO_COLOR`). Anything that is not a known tag stays as it is, so `[REDACTED:...]`, `[0]`
//! or `a[i]` print unchanged.
//!
//! The renderer works on pieces of a streamed answer: a tag cut between two pieces is held
//! until its end arrives. It is linear in its input: a tag is at most [`MAX_TAG`] bytes (a
//! longer `[...` is text), and at most [`MAX_DEPTH`] styles are open at once (deeper opening
//! tags are dropped).

use crate::cli::style::{self, Stream};
use crate::config::generated::client::DisplayTheme;

/// Longest tag, brackets included, in bytes.
pub const MAX_TAG: usize = 48;
/// Most styles open at once.
pub const MAX_DEPTH: usize = 16;

/// The SGR parameters of one style word in `theme`, or `None` when it is not a style.
pub fn word_sgr(theme: DisplayTheme, word: &str) -> Option<&'static str> {
    use DisplayTheme as T;
    let w = word.to_ascii_lowercase();
    let attr = match w.as_str() {
        // Rich's one-letter forms (`[i]`, `[b]`) are left out: in text they are more often an
        // index than markup.
        "bold" => Some("1"),
        "dim" => Some("2"),
        "italic" => Some("3"),
        "underline" => Some("4"),
        "reverse" => Some("7"),
        "strike" => Some("9"),
        _ => None,
    };
    if attr.is_some() {
        return attr;
    }
    let colour = match (theme, w.as_str()) {
        (_, "black") => "30",
        (_, "white") => "37",
        (T::Accessible, "red" | "bright_red") => "1;4;35",
        (T::Accessible, "green" | "bright_green") => "36",
        (T::Accessible, "yellow" | "bright_yellow") => "1;33",
        (T::Accessible, "blue" | "bright_blue") => "34",
        (T::Dark, "red") => "91",
        (T::Dark, "green") => "92",
        (T::Dark, "yellow") => "93",
        (T::Dark, "blue") => "94",
        (T::Dark, "magenta") => "95",
        (T::Dark, "cyan" | "code") => "96",
        (T::Light, "yellow") => "35",
        (_, "red") => "31",
        (_, "green") => "32",
        (_, "yellow") => "33",
        (_, "blue") => "34",
        (_, "magenta") => "35",
        (_, "cyan" | "code") => "36",
        (_, "bright_red") => "91",
        (_, "bright_green") => "92",
        (_, "bright_yellow") => "93",
        (_, "bright_blue") => "94",
        (_, "bright_magenta") => "95",
        (_, "bright_cyan") => "96",
        _ => return None,
    };
    Some(colour)
}

/// What a bracketed text is.
enum Tag {
    /// Opens these styles (their SGR parameters joined).
    Open(String, String),
    /// `[/]` or `[/name]`.
    Close(Option<String>),
    /// Not markup: print it.
    Text,
}

fn classify(theme: DisplayTheme, inner: &str) -> Tag {
    if let Some(name) = inner.strip_prefix('/') {
        let name = name.trim();
        if name.is_empty() {
            return Tag::Close(None);
        }
        if name
            .split_whitespace()
            .all(|w| word_sgr(theme, w).is_some())
        {
            return Tag::Close(Some(name.to_ascii_lowercase()));
        }
        return Tag::Text;
    }
    let words: Vec<&str> = inner.split_whitespace().collect();
    if words.is_empty() {
        return Tag::Text;
    }
    let mut codes = Vec::new();
    for w in &words {
        match word_sgr(theme, w) {
            Some(c) => codes.push(c),
            None => return Tag::Text,
        }
    }
    Tag::Open(inner.trim().to_ascii_lowercase(), codes.join(";"))
}

/// A streaming renderer of one answer.
pub struct Renderer {
    colour: bool,
    theme: DisplayTheme,
    /// Open styles: name and SGR parameters.
    stack: Vec<(String, String)>,
    /// A `[` (or a `\`) and what followed it, waiting for the rest of the tag.
    pending: String,
}

impl Renderer {
    /// With `colour`, tags become SGR sequences of `theme`; without, they are removed.
    pub fn new(colour: bool, theme: DisplayTheme) -> Renderer {
        Renderer {
            colour,
            theme,
            stack: Vec::new(),
            pending: String::new(),
        }
    }

    /// For stdout: colour when stdout gets it, in the configured theme.
    pub fn for_stdout() -> Renderer {
        Renderer::new(
            style::enabled(Stream::Stdout, &|k| std::env::var(k).ok()),
            style::current_theme(),
        )
    }

    /// The printable text of the next piece.
    pub fn push(&mut self, piece: &str) -> String {
        let mut out = String::with_capacity(piece.len() + 16);
        for c in piece.chars() {
            self.step(c, &mut out);
        }
        out
    }

    /// What is still held (as text), and a reset when a style is open.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.pending);
        if self.colour && !self.stack.is_empty() {
            out.push_str("\x1b[0m");
        }
        self.stack.clear();
        out
    }

    fn step(&mut self, c: char, out: &mut String) {
        if self.pending.is_empty() {
            match c {
                '[' | '\\' => self.pending.push(c),
                _ => out.push(c),
            }
            return;
        }
        if self.pending == "\\" {
            self.pending.clear();
            if c == '[' {
                // `\[` is a literal bracket.
                out.push('[');
            } else {
                out.push('\\');
                self.step(c, out);
            }
            return;
        }
        match c {
            ']' => {
                let inner = self.pending[1..].to_owned();
                self.pending.clear();
                self.apply(&inner, out);
            }
            '[' | '\n' | '\\' => {
                out.push_str(&std::mem::take(&mut self.pending));
                self.step(c, out);
            }
            _ if self.pending.len() + c.len_utf8() >= MAX_TAG => {
                out.push_str(&std::mem::take(&mut self.pending));
                out.push(c);
            }
            _ => self.pending.push(c),
        }
    }

    fn apply(&mut self, inner: &str, out: &mut String) {
        match classify(self.theme, inner) {
            Tag::Text => {
                out.push('[');
                out.push_str(inner);
                out.push(']');
            }
            Tag::Open(name, codes) => {
                if self.stack.len() < MAX_DEPTH {
                    self.stack.push((name, codes));
                    self.emit(out);
                }
            }
            Tag::Close(name) => {
                let at = match name {
                    None => self.stack.len().checked_sub(1),
                    Some(n) => self.stack.iter().rposition(|(s, _)| *s == n),
                };
                if let Some(i) = at {
                    self.stack.truncate(i);
                    self.emit(out);
                }
            }
        }
    }

    /// The SGR sequence of the styles now open.
    fn emit(&self, out: &mut String) {
        if !self.colour {
            return;
        }
        out.push_str("\x1b[0m");
        if !self.stack.is_empty() {
            let codes: Vec<&str> = self.stack.iter().map(|(_, c)| c.as_str()).collect();
            out.push_str(&format!("\x1b[{}m", codes.join(";")));
        }
    }
}

/// `text` rendered whole for stdout.
pub fn for_stdout(text: &str) -> String {
    let mut r = Renderer::for_stdout();
    let mut out = r.push(text);
    out.push_str(&r.finish());
    out
}

/// `text` rendered whole.
pub fn render(text: &str, colour: bool, theme: DisplayTheme) -> String {
    let mut r = Renderer::new(colour, theme);
    let mut out = r.push(text);
    out.push_str(&r.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: DisplayTheme = DisplayTheme::Default;

    #[test]
    fn tags_become_colours_or_vanish() {
        let text = "[bold]web-2[/bold] is [red]CrashLoopBackOff[/red]";
        assert_eq!(render(text, false, T), "web-2 is CrashLoopBackOff");
        assert_eq!(
            render(text, true, T),
            "\x1b[0m\x1b[1mweb-2\x1b[0m is \x1b[0m\x1b[31mCrashLoopBackOff\x1b[0m"
        );
    }

    #[test]
    fn nesting_and_the_short_close_restore_the_outer_style() {
        let out = render("[bold]a [red]b[/] c[/bold]", true, T);
        assert_eq!(
            out,
            "\x1b[0m\x1b[1ma \x1b[0m\x1b[1;31mb\x1b[0m\x1b[1m c\x1b[0m"
        );
    }

    #[test]
    fn what_is_not_markup_stays_text() {
        for s in [
            "[REDACTED:k8s-secret-data:1]",
            "a[i] = b[0]",
            "[metrics] total",
            "[",
            "]]",
            "[/nosuch]",
            "[bold",
            "[bold\n]",
            "[]",
        ] {
            assert_eq!(render(s, true, T), s, "{s:?}");
            assert_eq!(render(s, false, T), s, "{s:?}");
        }
        assert_eq!(render(r"\[bold] is a tag", false, T), "[bold] is a tag");
        assert_eq!(render(r"C:\path", false, T), r"C:\path");
    }

    #[test]
    fn an_unmatched_close_is_dropped_and_an_open_style_is_reset_at_the_end() {
        assert_eq!(render("x[/red]y", false, T), "xy");
        assert_eq!(render("[green]ok", true, T), "\x1b[0m\x1b[32mok\x1b[0m");
    }

    #[test]
    fn a_tag_cut_between_pieces_is_held_until_it_ends() {
        let mut r = Renderer::new(false, T);
        let mut out = String::new();
        for piece in ["[bo", "ld]we", "b[/", "bold] [1", "]"] {
            out.push_str(&r.push(piece));
        }
        out.push_str(&r.finish());
        assert_eq!(out, "web [1]");
    }

    #[test]
    fn pieces_of_any_size_render_as_the_whole() {
        let text = "[bold]a[/bold] \\[red] [red]b[/] [x] c[i] [bold red]d[/bold red] [";
        for colour in [false, true] {
            let whole = render(text, colour, T);
            for size in 1..8 {
                let mut r = Renderer::new(colour, T);
                let chars: Vec<char> = text.chars().collect();
                let mut out = String::new();
                for piece in chars.chunks(size) {
                    out.push_str(&r.push(&piece.iter().collect::<String>()));
                }
                out.push_str(&r.finish());
                assert_eq!(out, whole, "pieces of {size}");
            }
        }
    }

    #[test]
    fn hostile_input_is_linear_and_bounded() {
        let long = "[".repeat(200_000) + &"a".repeat(100) + &"]".repeat(200_000);
        assert_eq!(render(&long, false, T), long);
        let deep = "[bold]".repeat(10_000) + "x" + &"[/bold]".repeat(10_000);
        let out = render(&deep, true, T);
        assert!(out.contains('x') && out.len() < 2_000, "{}", out.len());
        let wide = format!("[{}]", "bold ".repeat(100));
        assert_eq!(render(&wide, false, T), wide);
    }

    #[test]
    fn the_accessible_theme_has_no_red_or_green() {
        for w in [
            "red",
            "green",
            "bright_red",
            "bright_green",
            "yellow",
            "blue",
        ] {
            let codes = word_sgr(DisplayTheme::Accessible, w).expect("known");
            for c in codes.split(';') {
                assert!(!matches!(c, "31" | "32" | "91" | "92"), "{w} uses {c}");
            }
        }
    }
}
