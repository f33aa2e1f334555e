//! A string that never prints itself: API keys, JWT secrets.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a secret prints as.
pub const REDACTED: &str = "**REDACTED**";

/// A secret value. `Debug` and `Display` print `**REDACTED**`; call [`Secret::expose`] to use it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty or only whitespace (an unset key written as `""`).
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The value without surrounding whitespace (a key file's trailing newline).
    pub fn trimmed(&self) -> Secret {
        Secret(self.0.trim().to_owned())
    }

    /// `text` with every occurrence of this secret replaced by [`REDACTED`] (an empty secret
    /// replaces nothing): for text that may echo it back, such as a provider's error body.
    pub fn scrub<'a>(&self, text: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let key = self.0.as_bytes();
        if key.is_empty() || !text.windows(key.len()).any(|w| w == key) {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut clean = Vec::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
            clean.extend_from_slice(&rest[..at]);
            clean.extend_from_slice(REDACTED.as_bytes());
            rest = &rest[at + key.len()..];
        }
        clean.extend_from_slice(rest);
        std::borrow::Cow::Owned(clean)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_redacted_and_scrubs_itself_out_of_text() {
        let s = Secret::new("sk-123");
        assert_eq!(
            format!("{s} {s:?} {:?}", Some(&s)),
            format!("{REDACTED} {REDACTED} Some({REDACTED})")
        );
        assert_eq!(s.expose(), "sk-123");
        assert_eq!(
            &*s.scrub(b"key sk-123 and sk-123!"),
            format!("key {REDACTED} and {REDACTED}!").as_bytes()
        );
        assert_eq!(&*s.scrub(b"nothing here"), b"nothing here");
        assert_eq!(&*Secret::new("").scrub(b"text"), b"text");
    }
}
