//! The placeholder text `[REDACTED:<kind-name>:<n>]`: writing one, finding them in text.

use std::sync::LazyLock;

use regex::Regex;

use super::Kind;

/// Anything shaped like a placeholder, whether or not the kind name is one of ours.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[REDACTED:[a-z0-9][a-z0-9-]*:[0-9]+\]").expect("placeholder regex")
});

const MARK: &str = "[REDACTED:";

pub(super) fn format(kind: Kind, n: usize) -> String {
    format!("{MARK}{}:{n}]", kind.name())
}

/// The byte ranges of every placeholder-shaped string in `text`, in order.
pub(super) fn find_all(text: &str) -> Vec<(usize, usize)> {
    if !text.contains(MARK) {
        return Vec::new();
    }
    PLACEHOLDER
        .find_iter(text)
        .map(|m| (m.start(), m.end()))
        .collect()
}

pub(super) fn contains(text: &str) -> bool {
    text.contains(MARK) && PLACEHOLDER.is_match(text)
}

/// Whether the whole of `value` is one placeholder.
pub(super) fn is_placeholder(value: &str) -> bool {
    value.starts_with(MARK)
        && PLACEHOLDER
            .find(value)
            .is_some_and(|m| m.start() == 0 && m.end() == value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_find_agree() {
        let p = format(Kind::AwsSecretKey, 12);
        assert_eq!(p, "[REDACTED:aws-secret-key:12]");
        let text = format!("a {p} b [REDACTED:other:3] [REDACTED:x] [redacted:jwt:1]");
        assert_eq!(find_all(&text), vec![(2, 30), (33, 51)]);
        assert!(is_placeholder(&p));
        assert!(!is_placeholder(&format!("{p} ")));
        assert!(contains(&text));
        assert!(!contains("[REDACTED:jwt:]"));
    }
}
