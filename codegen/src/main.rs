//! `cargo run -p codegen`: regenerate every file derived from `schema/` and `proto/`.
//! `cargo run -p codegen -- --check` only lists stale files and fails if there are any;
//! `--root DIR` works on another tree (for trying a schema out).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let root = args
        .iter()
        .position(|a| a == "--root")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(codegen::workspace_root);
    let check_only = std::env::args().any(|a| a == "--check");
    let files = match codegen::generate(&root) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut changed = 0;
    for g in &files {
        let target = root.join(&g.path);
        if std::fs::read(&target).ok().as_deref() == Some(&g.contents[..]) {
            continue;
        }
        changed += 1;
        if check_only {
            println!("stale: {}", g.path.display());
            continue;
        }
        if let Some(dir) = target.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            eprintln!("error: creating {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        if let Err(e) = std::fs::write(&target, &g.contents) {
            eprintln!("error: writing {}: {e}", target.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", g.path.display());
    }
    if check_only && changed > 0 {
        eprintln!("error: {changed} generated file(s) are stale; run `cargo run -p codegen`");
        return ExitCode::FAILURE;
    }
    println!("{} generated files, {changed} changed", files.len());
    ExitCode::SUCCESS
}
