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
