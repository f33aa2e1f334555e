//! Colours of vibectl's own lines (errors, warnings, hints, metrics, the kubectl command line)
//! by `display.theme`. Colour is used only on a terminal, never with `display.colored_output`
//! off, `NO_COLOR` set or `TERM=dumb`, and otherwise always with `CLICOLOR_FORCE` set to
//! anything but `0`. Model answers and kubectl output are printed as they are.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::config::generated::client::DisplayTheme;

/// What a piece of text is, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The `error:` label.
    Error,
    /// The `warning:` label.
    Warning,
    /// The `hint:` label.
    Hint,
    /// A `[metrics]` line.
    Metrics,
    /// The `$ kubectl ...` line.
    Command,
}

/// Which stream the text goes to (each is checked for a terminal on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

static THEME: AtomicU8 = AtomicU8::new(0);
/// `display.colored_output` turned off.
static PLAIN: AtomicBool = AtomicBool::new(false);

/// Whether colour may be used at all (`display.colored_output`); off wins over CLICOLOR_FORCE.
pub fn set_colored(on: bool) {
    PLAIN.store(!on, Ordering::Relaxed);
}

/// Use `theme` from now on (set when the client config is loaded; the default until then).
pub fn set_theme(theme: DisplayTheme) {
    let n = match theme {
        DisplayTheme::Default => 0,
        DisplayTheme::Dark => 1,
        DisplayTheme::Light => 2,
        DisplayTheme::Accessible => 3,
    };
    THEME.store(n, Ordering::Relaxed);
}

/// The theme in use.
pub fn current_theme() -> DisplayTheme {
    theme()
}

fn theme() -> DisplayTheme {
    match THEME.load(Ordering::Relaxed) {
        1 => DisplayTheme::Dark,
        2 => DisplayTheme::Light,
        3 => DisplayTheme::Accessible,
        _ => DisplayTheme::Default,
    }
}

/// The SGR parameters of `role` in `theme`. The accessible theme uses no red or green: blue
/// and yellow with bold and underline, which stay apart in every common colour-vision type.
pub fn sgr(theme: DisplayTheme, role: Role) -> &'static str {
    use DisplayTheme as T;
    use Role as R;
    match (theme, role) {
        (T::Default, R::Error) => "1;31",
        (T::Default, R::Warning) => "33",
        (T::Default, R::Hint) => "36",
        (T::Default, R::Metrics) => "2",
        (T::Default, R::Command) => "1;34",
        (T::Dark, R::Error) => "1;91",
        (T::Dark, R::Warning) => "93",
        (T::Dark, R::Hint) => "96",
        (T::Dark, R::Metrics) => "90",
        (T::Dark, R::Command) => "1;94",
        (T::Light, R::Error) => "1;31",
        (T::Light, R::Warning) => "1;35",
        (T::Light, R::Hint) => "34",
        (T::Light, R::Metrics) => "2",
        (T::Light, R::Command) => "1;34",
        (T::Accessible, R::Error) => "1;4;34",
        (T::Accessible, R::Warning) => "1;33",
        (T::Accessible, R::Hint) => "1",
        (T::Accessible, R::Metrics) => "2",
        (T::Accessible, R::Command) => "1;34",
    }
}

/// Whether `stream` gets colour, by the environment `env`.
pub fn enabled(stream: Stream, env: &dyn Fn(&str) -> Option<String>) -> bool {
    if PLAIN.load(Ordering::Relaxed) {
        return false;
    }
    if env("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if env("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    if env("TERM").as_deref() == Some("dumb") {
        return false;
    }
    match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    }
}

/// `text` in the colour of `role`, when `stream` gets colour.
pub fn paint(role: Role, stream: Stream, text: &str) -> Cow<'_, str> {
    if enabled(stream, &|k| std::env::var(k).ok()) {
        Cow::Owned(format!("\x1b[{}m{text}\x1b[0m", sgr(theme(), role)))
    } else {
        Cow::Borrowed(text)
    }
}

/// The `$ kubectl ...` line shown before a command runs, newline included.
pub fn command_line(line: &str) -> String {
    format!(
        "{}\n",
        paint(Role::Command, Stream::Stdout, &format!("$ {line}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 5] = [
        Role::Error,
        Role::Warning,
        Role::Hint,
        Role::Metrics,
        Role::Command,
    ];

    #[test]
    fn the_accessible_theme_has_no_red_or_green() {
        for role in ROLES {
            let codes = sgr(DisplayTheme::Accessible, role);
            for c in codes.split(';') {
                assert!(!matches!(c, "31" | "32" | "91" | "92"), "{role:?} uses {c}");
            }
        }
    }

    #[test]
    fn errors_and_warnings_differ_in_every_theme() {
        for t in [
            DisplayTheme::Default,
            DisplayTheme::Dark,
            DisplayTheme::Light,
            DisplayTheme::Accessible,
        ] {
            assert_ne!(sgr(t, Role::Error), sgr(t, Role::Warning), "{t:?}");
        }
    }

    #[test]
    fn no_color_wins_and_force_forces() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]);
        assert!(!enabled(Stream::Stderr, &both));
        let forced = env(&[("CLICOLOR_FORCE", "1"), ("TERM", "dumb")]);
        assert!(enabled(Stream::Stderr, &forced));
        let off = env(&[("CLICOLOR_FORCE", "0"), ("TERM", "dumb")]);
        assert!(!enabled(Stream::Stderr, &off));
    }
}
