//! `check PREDICATE`: let the model gather facts with read-only kubectl commands until it
//! decides whether the predicate holds, within `features.check_max_iterations` steps. The exit
//! code says the verdict, as vibectl 0.11.6's does: 0 true, 1 false, 2 poorly posed, 3 cannot
//! determine (also when the model fails, plans a command that could change the cluster, or runs
//! out of steps); 130 after Ctrl-C.

use clap::Args;

use super::kubectl;
use super::looping::{self, Interrupt};
use super::safety::{Class, classify};
use super::session::{Ctx, Session, print_answer};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult};
use crate::config::generated::client::key;
use crate::prompts;
use crate::prompts::steps::{Action, Observation};

/// The predicate holds.
pub const EXIT_TRUE: u8 = 0;
/// The predicate does not hold.
pub const EXIT_FALSE: u8 = 1;
/// The predicate is ambiguous or makes no sense for a cluster.
pub const EXIT_POORLY_POSED: u8 = 2;
/// The facts could not settle it.
pub const EXIT_CANNOT_DETERMINE: u8 = 3;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The statement about the cluster to decide, in plain words
    pub predicate: Vec<String>,
}

pub fn run(ctx: &Ctx, args: &CheckArgs) -> CmdResult {
    let predicate = args.predicate.join(" ");
    if predicate.trim().is_empty() {
        return Err(CmdError::new("`check` needs a predicate")
            .with_hint("vibectl check \"every pod in namespace shop is running\"")
            .with_code(EXIT_POORLY_POSED));
    }
    block_on(async {
        let session = Session::open(ctx).map_err(cannot)?;
        let mut interrupt = Interrupt::catch().map_err(cannot)?;
        let result = check(&session, &mut interrupt, &predicate).await;
        session.finish();
        result
    })?
}

/// An error that leaves the predicate undecided exits 3, unless it is already an exit code.
fn cannot(e: CmdError) -> CmdError {
    if e.code == crate::cli::EXIT_ERROR {
        e.with_code(EXIT_CANNOT_DETERMINE)
    } else {
        e
    }
}

async fn check(session: &Session, interrupt: &mut Interrupt, predicate: &str) -> CmdResult {
    let max = u32::try_from(session.cfg.features.check_max_iterations)
        .unwrap_or(10)
        .max(1);
    let mut history: Vec<Observation> = Vec::new();
    let show_vibe = session.cfg.display.show_vibe;
    for n in 1..=max {
        let memory = session.memory_now();
        looping::before_step(session, n, Some(max), memory.as_deref());
        let mut ctx = session.context();
        if session.cfg.memory.enabled {
            ctx.memory = memory.as_deref().filter(|m| !m.trim().is_empty());
        }
        let req = prompts::check::step(predicate, &history, &ctx);
        let Some(action) = interrupt.race(looping::next_action(session, req)).await else {
            return Err(looping::interrupted(session, "check", "a model call").await);
        };
        let obs = match action.map_err(cannot)? {
            Action::Done {
                exit_code,
                explanation,
            } => {
                let code = match exit_code {
                    Some(c @ 0..=3) => c as u8,
                    other => {
                        crate::cli::warn(&format!(
                            "the model ended with exit code {other:?}, not 0 to 3: counted as cannot determine"
                        ));
                        EXIT_CANNOT_DETERMINE
                    }
                };
                let why = explanation.unwrap_or_else(|| "no explanation given".to_owned());
                if show_vibe {
                    print_answer(&format!("{}: {}", verdict(code), why.trim()));
                }
                let obs = Observation {
                    what: format!("Decided: {} (exit code {code}): {why}", verdict(code)),
                    output: String::new(),
                };
                session
                    .remember(&looping::news("check", predicate, n, &obs))
                    .await;
                return if code == EXIT_TRUE {
                    Ok(())
                } else {
                    Err(CmdError::exit(code))
                };
            }
            Action::Command {
                commands,
                explanation,
            } => {
                let line = kubectl::display(&commands);
                let real = session.guard.restore(&commands).map_err(cannot)?;
                if let Some(why) = refusal(&real) {
                    session.guard.audit_run(&line, true, false, None)?;
                    let obs = Observation {
                        what: format!("Planned `{line}`, which vibectl refused: {why}"),
                        output: String::new(),
                    };
                    session
                        .remember(&looping::news("check", predicate, n, &obs))
                        .await;
                    return Err(CmdError::new(format!(
                        "check runs only read-only commands; the model planned `{line}`: {why}"
                    ))
                    .with_hint("nothing was run; rephrase the predicate as a question about the cluster's state")
                    .with_code(EXIT_CANNOT_DETERMINE));
                }
                if kubectl::is_streaming(&real) {
                    Observation {
                        what: format!("Planned `{line}`, not run: it keeps running until stopped"),
                        output: "Plan a command that ends on its own.".to_owned(),
                    }
                } else {
                    if let Some(e) = explanation.filter(|_| show_vibe) {
                        eprintln!("{line}: {}", e.trim());
                    }
                    let Some((output, _ok)) =
                        looping::run_step(session, interrupt, &commands, &real).await?
                    else {
                        return Err(
                            looping::interrupted(session, "check", &format!("`{line}`")).await
                        );
                    };
                    if session.cfg.display.show_raw_output {
                        print_answer(&output);
                    }
                    Observation {
                        what: format!("Ran `{line}`"),
                        output,
                    }
                }
            }
            Action::Thought { text } => {
                if show_vibe {
                    eprintln!("Thought: {}", text.trim());
                }
                Observation {
                    what: format!("Thought: {text}"),
                    output: String::new(),
                }
            }
            Action::Wait { duration_seconds } => {
                looping::wait(session, interrupt, "check", duration_seconds).await?
            }
            Action::Error { message } | Action::Feedback { message, .. } => {
                if show_vibe {
                    eprintln!("The model says: {}", message.trim());
                }
                Observation {
                    what: format!("Said: {message}"),
                    output: String::new(),
                }
            }
        };
        session
            .remember(&looping::news("check", predicate, n, &obs))
            .await;
        history.push(obs);
    }
    session
        .remember(&format!(
            "vibectl check ({predicate}): undecided after {max} iterations"
        ))
        .await;
    Err(CmdError::new(format!(
        "cannot determine whether the predicate holds within {max} iterations"
    ))
    .with_hint(format!(
        "raise {} (now {max}), or make the predicate more specific",
        key::FEATURES_CHECK_MAX_ITERATIONS
    ))
    .with_code(EXIT_CANNOT_DETERMINE))
}

/// Why `args` may not run in a check, if it may not.
fn refusal(args: &[String]) -> Option<String> {
    match classify(args) {
        Class::Reads => None,
        Class::Changes { verb } => Some(format!("`{verb}` can change the cluster")),
        Class::Unknown { verb } => Some(format!(
            "vibectl does not know what `{verb}` does, so it does not run it"
        )),
    }
}

fn verdict(code: u8) -> &'static str {
    match code {
        EXIT_TRUE => "True",
        EXIT_FALSE => "False",
        EXIT_POORLY_POSED => "Poorly posed",
        _ => "Cannot determine",
    }
}
