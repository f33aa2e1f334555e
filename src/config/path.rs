//! Dotted key paths: `llm.model`, `proxy.profiles.prod.server_url`, `models."gpt-4.1".provider`.

use std::fmt;
use std::str::FromStr;

/// A parsed dotted path. Segments are plain strings; a map entry name with a dot, a quote or a
/// space is written in double quotes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPath(Vec<String>);

/// Why a dotted path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the key is empty")]
    Empty,
    #[error("empty segment at character {0} (two dots, or a dot at an end)")]
    EmptySegment(usize),
    #[error("unclosed double quote starting at character {0}")]
    UnclosedQuote(usize),
    #[error("a quoted segment must be followed by `.` or the end (character {0})")]
    AfterQuote(usize),
}

impl KeyPath {
    pub fn parse(s: &str) -> Result<KeyPath, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        let mut segs = Vec::new();
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        loop {
            let start = i;
            let mut seg = String::new();
            if chars.get(i) == Some(&'"') {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(PathError::UnclosedQuote(start)),
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                            seg.push(chars[i + 1]);
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            seg.push(c);
                            i += 1;
                        }
                    }
                }
                if !matches!(chars.get(i), None | Some('.')) {
                    return Err(PathError::AfterQuote(i));
                }
                if seg.is_empty() {
                    return Err(PathError::EmptySegment(start));
                }
            } else {
                while let Some(&c) = chars.get(i) {
                    if c == '.' {
                        break;
                    }
                    seg.push(c);
                    i += 1;
                }
                if seg.is_empty() {
                    return Err(PathError::EmptySegment(start));
                }
            }
            segs.push(seg);
            match chars.get(i) {
                None => break,
                Some(_) => {
                    i += 1;
                    if i == chars.len() {
                        return Err(PathError::EmptySegment(i));
                    }
                }
            }
        }
        Ok(KeyPath(segs))
    }

    /// A schema template (`proxy.profiles.<profile>.server_url`), split on dots as written.
    pub fn template(s: &str) -> KeyPath {
        KeyPath(s.split('.').map(str::to_owned).collect())
    }

    pub fn from_segments(segs: Vec<String>) -> KeyPath {
        KeyPath(segs)
    }

    /// A template with its `<name>` segments filled in order.
    pub fn fill(template: &str, names: &[&str]) -> KeyPath {
        let mut names = names.iter();
        KeyPath(
            template
                .split('.')
                .map(|s| {
                    if is_placeholder(s) {
                        names
                            .next()
                            .map(|n| (*n).to_owned())
                            .unwrap_or_else(|| s.to_owned())
                    } else {
                        s.to_owned()
                    }
                })
                .collect(),
        )
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parent(&self) -> Option<KeyPath> {
        (self.0.len() > 1).then(|| KeyPath(self.0[..self.0.len() - 1].to_vec()))
    }

    pub fn child(&self, seg: &str) -> KeyPath {
        let mut v = self.0.clone();
        v.push(seg.to_owned());
        KeyPath(v)
    }

    pub fn last(&self) -> &str {
        self.0.last().map(String::as_str).unwrap_or_default()
    }

    /// Whether this concrete path fits a template, `<name>` matching any one segment.
    pub fn matches(&self, template: &KeyPath) -> bool {
        self.0.len() == template.0.len()
            && self
                .0
                .iter()
                .zip(&template.0)
                .all(|(s, t)| s == t || is_placeholder(t))
    }

    /// Whether this concrete path fits a dotted template as written in the key table
    /// (`proxy.profiles.<profile>.server_url`), without building a path from it.
    pub fn matches_template(&self, template: &str) -> bool {
        let mut segs = self.0.iter();
        for t in template.split('.') {
            match segs.next() {
                Some(s) if s == t || is_placeholder(t) => {}
                _ => return false,
            }
        }
        segs.next().is_none()
    }

    /// Whether `self` is `other` or lies under it.
    pub fn starts_with(&self, other: &KeyPath) -> bool {
        self.0.len() >= other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a == b)
    }

    /// The path in yaml-edit's syntax (dots, brackets, backslashes and all-digit names escaped).
    pub fn to_yaml_edit(&self) -> String {
        self.0
            .iter()
            .map(|s| {
                let mut out = String::new();
                if s.chars().all(|c| c.is_ascii_digit()) {
                    out.push('\\');
                }
                for c in s.chars() {
                    if matches!(c, '.' | '[' | ']' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The JSON pointer of this path (`/a/b`).
    pub fn to_pointer(&self) -> String {
        self.0
            .iter()
            .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
            .collect()
    }
}

/// Whether a template segment is `<name>`.
pub fn is_placeholder(seg: &str) -> bool {
    seg.len() > 2 && seg.starts_with('<') && seg.ends_with('>')
}

fn needs_quotes(seg: &str) -> bool {
    !seg.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '<' | '>'))
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if needs_quotes(seg) {
                write!(f, "\"{}\"", seg.replace('\\', "\\\\").replace('"', "\\\""))?;
            } else {
                f.write_str(seg)?;
            }
        }
        Ok(())
    }
}

impl FromStr for KeyPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_quoted_segments() {
        let p = KeyPath::parse(r#"models."gpt-4.1".provider"#).unwrap();
        assert_eq!(p.segments(), ["models", "gpt-4.1", "provider"]);
        assert_eq!(p.to_string(), r#"models."gpt-4.1".provider"#);
        assert_eq!(p.to_yaml_edit(), r"models.gpt-4\.1.provider");
        assert_eq!(
            KeyPath::parse("section.key").unwrap().segments(),
            ["section", "key"]
        );
    }

    #[test]
    fn bad_paths_name_the_problem() {
        assert_eq!(KeyPath::parse(""), Err(PathError::Empty));
        assert_eq!(KeyPath::parse("a..b"), Err(PathError::EmptySegment(2)));
        assert_eq!(KeyPath::parse("a."), Err(PathError::EmptySegment(2)));
        assert_eq!(KeyPath::parse(".a"), Err(PathError::EmptySegment(0)));
        assert_eq!(KeyPath::parse("a.\"b"), Err(PathError::UnclosedQuote(2)));
        assert_eq!(KeyPath::parse("a.\"b\"c"), Err(PathError::AfterQuote(5)));
    }

    #[test]
    fn templates_match_any_entry_name() {
        // Made-up paths: this is about the syntax, not the schema's keys.
        let t = KeyPath::template("section.entries.<name>.field");
        assert!(
            KeyPath::parse("section.entries.prod.field")
                .unwrap()
                .matches(&t)
        );
        assert!(!KeyPath::parse("section.entries.field").unwrap().matches(&t));
        for (path, fits) in [
            ("section.entries.prod.field", true),
            ("section.entries.field", false),
            ("section.entries.prod.field.more", false),
            ("section.other.prod.field", false),
        ] {
            let p = KeyPath::parse(path).unwrap();
            assert_eq!(
                p.matches_template("section.entries.<name>.field"),
                fits,
                "{path}"
            );
            assert_eq!(p.matches(&t), fits, "{path}");
        }
        assert_eq!(
            KeyPath::fill("section.entries.<name>.field", &["a.b"]).to_string(),
            r#"section.entries."a.b".field"#
        );
    }
}
