//! `apply ARGS`: `kubectl apply ARGS`, summarized. `apply vibe "REQUEST"` (with
//! `features.intelligent_apply`): gather the manifests the request names (files or
//! directories) or have the model write the one it describes, validate each with
//! `kubectl apply --dry-run=server` (client when the server cannot be asked), have the model
//! correct what fails up to `features.max_correction_retries` times, show `kubectl diff` of the
//! result, confirm, apply, summarize. Nothing is applied unless every manifest validates.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::kube::{self, KubeArgs};
use super::kubectl;
use super::plan;
use super::session::{Ctx, Session};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult, out, warn};
use crate::config::generated::client::key;
use crate::prompts;

/// Most manifest files one request may name (directories count their files).
const MAX_FILES: usize = 50;
/// Largest manifest file read, in bytes.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// What kubectl says when the server could not be asked at all (then the client dry run
/// decides).
const UNREACHABLE: &[&str] = &[
    "Unable to connect to the server",
    "connection refused",
    "no such host",
    "i/o timeout",
    "the server could not find the requested resource",
];

/// One manifest on its way to the cluster.
struct Manifest {
    /// Where it came from, as shown: the path, or `(written by the model)`.
    source: String,
    text: String,
    /// The file kubectl reads: a private copy of `text`.
    file: PathBuf,
    corrected: u32,
}

pub fn run(ctx: &Ctx, args: &KubeArgs) -> CmdResult {
    if args.args.first().map(String::as_str) != Some("vibe") {
        return kube::run(ctx, "apply", args);
    }
    block_on(async {
        let mut session = Session::open(ctx)?;
        if !session.cfg.features.intelligent_apply {
            return kube::planned(&mut session, "apply", &args.args[1..]).await;
        }
        let (yes, request) = plan::split_request(&args.args[1..]);
        if request.trim().is_empty() {
            return Err(CmdError::new("`apply vibe` needs a request")
                .with_hint("vibectl apply vibe \"web.yaml, fixed so the server accepts it\""));
        }
        session.policy.yes |= yes;
        intelligent(&session, &request).await
    })?
}

async fn intelligent(session: &Session, request: &str) -> CmdResult {
    // Read-only mode refuses before any model call or file is read.
    session.policy.allow(&["apply".to_owned()])?;
    let dir = tempfile::Builder::new()
        .prefix("vibectl-apply-")
        .tempdir()
        .map_err(|e| CmdError::new(format!("cannot make a private temp dir: {e}")))?;
    let mut manifests = Vec::new();
    for (source, text) in gather(request)? {
        manifests.push(Manifest {
            file: private_copy(dir.path(), manifests.len(), &text)?,
            source,
            text,
            corrected: 0,
        });
    }
    if manifests.is_empty() {
        let answer = session
            .ask(
                "manifest",
                prompts::apply::generate(request, &session.context()),
            )
            .await?;
        let text = prompts::apply::manifest(&answer).ok_or_else(|| {
            CmdError::new(format!(
                "the model wrote no manifest for the request: {}",
                answer.trim()
            ))
            .with_hint(
                "name the manifest files in the request, or describe the objects more precisely",
            )
        })?;
        manifests.push(Manifest {
            file: private_copy(dir.path(), 0, &text)?,
            source: "(written by the model)".to_owned(),
            text,
            corrected: 0,
        });
    }
    let retries = u32::try_from(session.cfg.features.max_correction_retries).unwrap_or(0);
    for (i, m) in manifests.iter_mut().enumerate() {
        let mut error = match validate(session, &m.file)? {
            None => continue,
            Some(e) => e,
        };
        loop {
            if m.corrected >= retries {
                return Err(CmdError::new(format!(
                    "{} fails validation{}: {}",
                    m.source,
                    match m.corrected {
                        0 => String::new(),
                        n => format!(" after {n} correction(s) by the model"),
                    },
                    error.trim()
                ))
                .with_hint(format!(
                    "nothing was applied; fix the manifest, or let the model try more times with {} (now {retries})",
                    key::FEATURES_MAX_CORRECTION_RETRIES
                )));
            }
            m.corrected += 1;
            eprintln!(
                "{} was rejected by the dry run; asking the model to correct it ({}/{retries})",
                m.source, m.corrected
            );
            let req =
                prompts::apply::correct(&m.source, &m.text, &error, request, &session.context());
            let answer = session.ask("correction", req).await?;
            let Some(text) = prompts::apply::manifest(&answer) else {
                error = format!("the model could not correct it: {}", answer.trim());
                continue;
            };
            m.text = text;
            m.file = private_copy(dir.path(), i, &m.text)?;
            match validate(session, &m.file)? {
                None => break,
                Some(e) => error = e,
            }
        }
    }
    for m in manifests.iter().filter(|m| m.corrected > 0) {
        out(&format!("Corrected {}:\n{}", m.source, m.text));
    }
    let mut real = vec!["apply".to_owned()];
    let mut shown = vec!["apply".to_owned()];
    for m in &manifests {
        real.extend(["-f".to_owned(), m.file.display().to_string()]);
        shown.extend(["-f".to_owned(), m.source.clone()]);
    }
    show_diff(session, &real[1..])?;
    let line = kubectl::display(&shown);
    out(&crate::cli::style::command_line(&line));
    let class = session.policy.allow(&real)?;
    let answer = session.confirm(&line, &class)?;
    if !plan::approve(session, &line, &answer).await? {
        return Ok(());
    }
    let output = session.run_kubectl(&shown, &real, true)?;
    plan::summarize(session, &line, &output, Some(request), false).await
}

/// The manifests the request names: each word that is an existing file, or a directory (its
/// `.yaml`, `.yml` and `.json` files), read whole. Bounded in count and size.
fn gather(request: &str) -> Result<Vec<(String, String)>, CmdError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for word in request.split_whitespace() {
        let word =
            word.trim_matches(|c: char| matches!(c, ',' | ';' | '"' | '\'' | '`' | '(' | ')'));
        let word = word
            .strip_suffix('.')
            .filter(|w| Path::new(w).exists())
            .unwrap_or(word);
        let path = Path::new(word);
        if word.is_empty() || !path.exists() {
            continue;
        }
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| CmdError::new(format!("cannot read the directory {word}: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else if !files.iter().any(|f| f == path) {
            files.push(path.to_owned());
        }
        if files.len() > MAX_FILES {
            return Err(CmdError::new(format!(
                "the request names more than {MAX_FILES} manifest files"
            ))
            .with_hint("apply them in smaller groups"));
        }
    }
    files
        .into_iter()
        .map(|f| {
            let shown = f.display().to_string();
            let size = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            if size > MAX_FILE_BYTES {
                return Err(CmdError::new(format!(
                    "{shown} is {size} bytes; vibectl apply vibe reads manifests of at most {MAX_FILE_BYTES} bytes"
                ))
                .with_hint(format!("apply it without the model: vibectl apply -f {shown}")));
            }
            let text = std::fs::read_to_string(&f)
                .map_err(|e| CmdError::new(format!("cannot read {shown}: {e}")))?;
            Ok((shown, text))
        })
        .collect()
}

/// Write `text` to a file only this user can read, in `dir`.
fn private_copy(dir: &Path, index: usize, text: &str) -> Result<PathBuf, CmdError> {
    let path = dir.join(format!("manifest-{index}-{}.yaml", uuid::Uuid::new_v4()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| CmdError::new(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// Dry-run `file` on the server (on the client when the server cannot be asked); `Some` is
/// what kubectl said against it.
fn validate(session: &Session, file: &Path) -> Result<Option<String>, CmdError> {
    let run = |mode: &str| -> Result<kubectl::Captured, CmdError> {
        let args: Vec<String> = ["apply", &format!("--dry-run={mode}"), "-f"]
            .iter()
            .map(|s| s.to_string())
            .chain([file.display().to_string()])
            .collect();
        let c = kubectl::capture_all(&session.cfg, &args)?;
        session
            .guard
            .audit_run(&kubectl::display(&args), true, true, c.status.code())?;
        Ok(c)
    };
    let server = run("server")?;
    if server.status.success() {
        return Ok(None);
    }
    if !UNREACHABLE.iter().any(|u| server.stderr.contains(u)) {
        return Ok(Some(server.stderr));
    }
    warn(&format!(
        "the server could not check the manifest ({}); checking it on the client only",
        server.stderr.lines().next().unwrap_or_default().trim()
    ));
    let client = run("client")?;
    Ok((!client.status.success()).then_some(client.stderr))
}

/// Print `kubectl diff` of the manifests against the cluster (a diff that cannot be made is a
/// warning: the dry run already passed).
fn show_diff(session: &Session, files: &[String]) -> CmdResult {
    let mut args = vec!["diff".to_owned()];
    args.extend(files.iter().cloned());
    let c = kubectl::capture_all(&session.cfg, &args)?;
    session.guard.audit_run(
        "kubectl diff (the manifests to apply)",
        true,
        true,
        c.status.code(),
    )?;
    match c.status.code() {
        Some(0) => out("No changes to the cluster's objects.\n"),
        Some(1) => out(&format!("Changes:\n{}", c.stdout)),
        _ => warn(&format!(
            "could not show the differences: {}",
            c.stderr.lines().next().unwrap_or_default().trim()
        )),
    }
    Ok(())
}
