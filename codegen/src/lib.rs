//! Code generation from the single sources of truth: `schema/*.yaml` and `proto/*.proto`.
//!
//! [`generate`] returns every generated file in memory, so `cargo run -p codegen` writes them and
//! the freshness test compares them with what is checked in.

pub mod check;
pub mod completions;
pub mod docs;
pub mod json_schema;
pub mod model;
pub mod proto;
pub mod rust;

use std::path::{Path, PathBuf};

use model::Schema;

/// One file codegen owns: its path relative to the workspace root and its exact contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen sits inside the workspace")
        .to_path_buf()
}

/// The programs, in order, with their schema file.
pub const PROGRAMS: &[&str] = &["client", "server"];

/// Load and check one schema; every broken rule is reported at once.
pub fn load(root: &Path, program: &str) -> Result<Schema, String> {
    let file = format!("schema/{program}.yaml");
    let text = std::fs::read_to_string(root.join(&file)).map_err(|e| format!("{file}: {e}"))?;
    let schema = Schema::parse(&file, &text).map_err(|e| e.to_string())?;
    let problems = check::check(&schema);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  {file}: {p}")).collect();
        return Err(format!(
            "the schema breaks {} rule(s):\n{}",
            problems.len(),
            list.join("\n")
        ));
    }
    Ok(schema)
}

/// Every generated file, deterministically.
pub fn generate(root: &Path) -> Result<Vec<Generated>, String> {
    let mut out = Vec::new();
    let mut push = |path: String, contents: Vec<u8>| {
        out.push(Generated {
            path: PathBuf::from(path),
            contents,
        })
    };
    for program in PROGRAMS {
        let schema = load(root, program)?;
        push(
            format!("src/config/generated/{program}.rs"),
            rust::module(&schema).into_bytes(),
        );
        push(
            format!("schema/{program}.schema.json"),
            json_schema::document(&schema).into_bytes(),
        );
        push(
            format!("docs/config-{program}.md"),
            docs::reference(&schema).into_bytes(),
        );
        for (name, script) in completions::scripts(schema.program.bin()) {
            push(format!("completions/{name}"), script.into_bytes());
        }
    }
    for (name, contents) in proto::generate(root)? {
        push(format!("src/proto/generated/{name}"), contents);
    }
    Ok(out)
}

/// Generated files whose checked-in copy differs from fresh output.
pub fn stale(root: &Path) -> Result<Vec<PathBuf>, String> {
    Ok(generate(root)?
        .into_iter()
        .filter(|g| std::fs::read(root.join(&g.path)).ok().as_deref() != Some(&g.contents[..]))
        .map(|g| g.path)
        .collect())
}
