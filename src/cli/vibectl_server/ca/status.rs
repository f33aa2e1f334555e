//! `ca status`: the CA's certificates with their expiry.

use std::path::Path;

use crate::cli::{CmdResult, out};
use crate::config::render;
use crate::server::ca;

pub fn run(dir: &Path) -> CmdResult {
    let rows: Vec<Vec<String>> = ca::certificates(dir)?
        .into_iter()
        .map(|c| {
            vec![
                c.path
                    .strip_prefix(dir)
                    .unwrap_or(&c.path)
                    .display()
                    .to_string(),
                c.subject.clone(),
                c.not_after.date().to_string(),
                c.days_left().to_string(),
            ]
        })
        .collect();
    out(&render::table(
        &["FILE", "SUBJECT", "EXPIRES", "DAYS LEFT"],
        &rows,
    ));
    Ok(())
}
