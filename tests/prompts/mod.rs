//! Snapshots of every prompt in `prompts::registry`: each is rendered with its fixed inputs and
//! clock into `tests/prompts/snapshots/NAME.txt`, and any difference fails with the command that
//! rewrites them (`UPDATE_SNAPSHOTS=1`), so every change to a prompt is a reviewed diff.

use std::path::{Path, PathBuf};

use vibectl::prompts::registry;

/// Set to rewrite the snapshot files instead of comparing.
const UPDATE: &str = "UPDATE_SNAPSHOTS";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prompts/snapshots")
}

#[test]
fn every_prompt_matches_its_snapshot() {
    let update = std::env::var_os(UPDATE).is_some_and(|v| !v.is_empty() && v != "0");
    let entries = registry::all();
    let mut problems = Vec::new();
    for e in &entries {
        let file = dir().join(format!("{}.txt", e.name));
        let text = registry::render(&e.request);
        if update {
            std::fs::write(&file, &text).expect("write the snapshot");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(old) if old == text => {}
            Ok(old) => problems.push(format!(
                "{} differs from {}:\n{}",
                e.name,
                file.display(),
                first_difference(&old, &text)
            )),
            Err(_) => problems.push(format!("{} has no snapshot {}", e.name, file.display())),
        }
    }
    // A snapshot whose prompt is gone is stale.
    for f in std::fs::read_dir(dir())
        .expect("the snapshot dir")
        .flatten()
    {
        let name = f
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".txt")
            .to_owned();
        if !entries.iter().any(|e| e.name == name) {
            if update {
                std::fs::remove_file(f.path()).expect("remove a stale snapshot");
            } else {
                problems.push(format!("{name}: a snapshot of no prompt"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nreview the change, then run: {UPDATE}=1 cargo test --test main prompts::",
        problems.join("\n\n")
    );
}

/// The first line that differs, old and new.
fn first_difference(old: &str, new: &str) -> String {
    let mut o = old.lines();
    let mut n = new.lines();
    let mut line = 1;
    loop {
        match (o.next(), n.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (None, None) => return "(only line endings differ)".into(),
            (a, b) => {
                return format!(
                    "line {line}\n- {}\n+ {}",
                    a.unwrap_or("(end)"),
                    b.unwrap_or("(end)")
                );
            }
        }
    }
}

#[test]
fn every_prompt_has_the_time_and_plans_warn_against_blocking() {
    for e in registry::all() {
        let system = e.request.system.join("\n");
        assert!(
            system.contains("The current time is 2026-01-02 03:04:05 UTC."),
            "{}",
            e.name
        );
        if e.name.starts_with("plan-") {
            assert!(system.contains("logs -f"), "{}", e.name);
            assert!(system.contains("Example 1:"), "{} has no examples", e.name);
        }
        if e.name.starts_with("summary-") || e.name == "recovery" {
            assert!(system.contains("[red]...[/red]"), "{}", e.name);
        }
        if e.name != "memory-update" {
            assert!(
                system.contains(registry::INSTRUCTIONS),
                "{}: no custom instructions",
                e.name
            );
            assert!(
                e.request.user[0].contains(registry::MEMORY),
                "{}: the memory is not the first user fragment",
                e.name
            );
        }
    }
}
