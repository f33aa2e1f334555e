//! `init-config`: write a commented default server config, secure by default.

use std::path::Path;

use clap::Args;

use crate::cli::{CmdError, CmdResult, out};
use crate::config::generated::server::key;
use crate::config::{KeyPath, SERVER, render, store};

#[derive(Debug, Args)]
pub struct InitConfigArgs {
    /// Overwrite an existing config file
    #[arg(long)]
    pub force: bool,
}

/// Defaults that differ in a fresh file from the built-in ones: auth on.
const SECURE: &[(&str, &str)] = &[(key::JWT_ENABLED, "true")];

pub fn run(file: &Path, args: &InitConfigArgs) -> CmdResult {
    if file.exists() && !args.force {
        return Err(CmdError::new(format!("{} already exists", file.display()))
            .with_hint("pass --force to overwrite it"));
    }
    let text = commented_defaults();
    let loaded = SERVER.from_text(file, Some(text.clone()))?;
    SERVER.validate(&loaded)?;
    store::write_atomic(file, &text, false)?;
    out(&format!("wrote {}\n", file.display()));
    Ok(())
}

fn wrap_comment(doc: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in doc.split_whitespace() {
        if !line.is_empty() && line.len() + word.len() + 1 > 88 {
            out.push_str(&format!("{indent}# {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{indent}# {line}\n"));
    }
    out
}

fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            serde_json::to_string(v).unwrap_or_default()
        }
        other => render::yaml(other).trim_end().to_owned(),
    }
}

/// Every key of the server schema with its doc as a comment and its default as the value.
pub fn commented_defaults() -> String {
    let schema = SERVER.schema;
    let mut text = String::from(
        "# vibectl-server configuration, written by `vibectl-server init-config`.\n\
         # `vibectl-server config info KEY` explains a key; docs/config-server.md lists them all.\n",
    );
    let mut open: Vec<String> = Vec::new();
    for k in schema.keys.iter().filter(|k| !k.path.contains('<')) {
        let path = KeyPath::template(k.path);
        let segs = path.segments();
        let parent = &segs[..segs.len() - 1];
        let common = open.iter().zip(parent).take_while(|(a, b)| a == b).count();
        open.truncate(common);
        for (i, seg) in parent.iter().enumerate().skip(common) {
            let indent = "  ".repeat(i);
            if i == 0 {
                text.push('\n');
            }
            let section_path = parent[..=i].join(".");
            if let Some(s) = schema.sections.iter().find(|s| s.path == section_path) {
                text.push_str(&wrap_comment(s.doc, &indent));
            }
            text.push_str(&format!("{indent}{seg}:\n"));
            open.push(seg.clone());
        }
        let indent = "  ".repeat(parent.len());
        if parent.is_empty() {
            text.push('\n');
        }
        text.push_str(&wrap_comment(k.doc, &indent));
        let raw = SECURE
            .iter()
            .find(|(p, _)| *p == k.path)
            .map(|(_, v)| (*v).to_owned());
        let value = match raw {
            Some(r) => serde_json::from_str(&r).unwrap_or(serde_json::Value::Null),
            None => k.default_value(),
        };
        text.push_str(&format!(
            "{indent}{}: {}\n",
            segs[segs.len() - 1],
            scalar_text(&value)
        ));
    }
    text
}
