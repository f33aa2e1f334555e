//! Scripted reply sequences (`--script FILE`): a JSON list of rules
//! `{"when": "TEXT", "replies": ["R1", "R2", ...]}`. A request takes the next reply of the
//! first rule whose `when` occurs in its system or user text (an empty `when` matches every
//! request); once a rule's replies are used up its last one repeats. A request no rule matches
//! gets the `--reply` flag's answer (or the default). Markers and headers still override.

use std::sync::Mutex;

use serde::Deserialize;

/// Largest script file read, in bytes.
const MAX_SCRIPT_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    #[serde(default)]
    when: String,
    replies: Vec<String>,
}

/// The rules and how many replies of each were handed out.
#[derive(Debug, Default)]
pub struct Script {
    rules: Vec<Rule>,
    used: Mutex<Vec<usize>>,
}

impl Script {
    /// Read a script file; the error says what is wrong with it.
    pub fn load(path: &std::path::Path) -> Result<Script, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > MAX_SCRIPT_BYTES {
            return Err(format!(
                "{}: larger than {MAX_SCRIPT_BYTES} bytes",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let rules: Vec<Rule> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(i) = rules.iter().position(|r| r.replies.is_empty()) {
            return Err(format!("{}: rule {i} has no replies", path.display()));
        }
        let used = Mutex::new(vec![0; rules.len()]);
        Ok(Script { rules, used })
    }

    /// The next reply for a request carrying `texts`, if a rule matches.
    pub fn next(&self, texts: &[&str]) -> Option<String> {
        let i = self
            .rules
            .iter()
            .position(|r| r.when.is_empty() || texts.iter().any(|t| t.contains(&r.when)))?;
        let mut used = self.used.lock().ok()?;
        let rule = &self.rules[i];
        let n = used[i].min(rule.replies.len() - 1);
        used[i] += 1;
        Some(rule.replies[n].clone())
    }
}
