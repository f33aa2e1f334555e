//! `auto [REQUEST]`: plan a step with the model, run it, summarize what it showed, fold it into
//! the memory, and again, until the model says the goal is reached, `--limit` steps have run
//! (at most [`MAX_STEPS`] without one), or the user presses Ctrl-C (exit 130). `semiauto` is
//! the same loop with the user confirming every step; it lives here too, as [`run_loop`].

use clap::Args;

use super::kubectl;
use super::looping::{self, Interrupt};
use super::plan;
use super::safety::Confirm;
use super::session::{Answer, Ctx, Session, print_answer};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult};
use crate::prompts;
use crate::prompts::steps::{Action, Observation};

/// The most steps a loop runs when `--limit` is not given.
pub const MAX_STEPS: u32 = 50;
/// The largest `--limit` and `--interval`.
const MAX_LIMIT: u32 = 1_000;
const MAX_INTERVAL: u64 = 3_600;

#[derive(Debug, Args)]
pub struct AutoArgs {
    /// The goal, in plain words (none: continue toward the goals in the memory)
    pub request: Vec<String>,
    /// Stop after N steps (without it: at most 50)
    #[arg(long, short = 'l', value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT as i64))]
    pub limit: Option<u32>,
    /// Seconds to wait between steps
    #[arg(long, short = 'i', value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=MAX_INTERVAL))]
    pub interval: u64,
}

#[derive(Debug, Args)]
pub struct SemiautoArgs {
    /// The goal, in plain words (none: continue toward the goals in the memory)
    pub request: Vec<String>,
    /// Stop after N steps (without it: at most 50)
    #[arg(long, short = 'l', value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT as i64))]
    pub limit: Option<u32>,
}

pub fn run(ctx: &Ctx, args: &AutoArgs) -> CmdResult {
    run_loop(
        ctx,
        &args.request.join(" "),
        args.limit,
        args.interval,
        false,
    )
}

/// The loop of `auto` (`semi` false) and `semiauto` (`semi` true).
pub fn run_loop(ctx: &Ctx, goal: &str, limit: Option<u32>, interval: u64, semi: bool) -> CmdResult {
    let name = if semi { "semiauto" } else { "auto" };
    block_on(async {
        let session = Session::open(ctx)?;
        let goal = Some(goal).filter(|g| !g.trim().is_empty());
        if goal.is_none() && session.context().memory.is_none() {
            return Err(
                CmdError::new("no goal given and no memory to continue from").with_hint(format!(
                    "say what to do: vibectl {name} \"find out why the web pods restart\""
                )),
            );
        }
        let mut interrupt = Interrupt::catch()?;
        let result = steps(&session, &mut interrupt, name, goal, limit, interval, semi).await;
        session.finish();
        result
    })?
}

#[allow(clippy::too_many_arguments)]
async fn steps(
    session: &Session,
    interrupt: &mut Interrupt,
    name: &str,
    goal: Option<&str>,
    limit: Option<u32>,
    interval: u64,
    semi: bool,
) -> CmdResult {
    let bound = limit.unwrap_or(MAX_STEPS);
    let goal_text = goal.unwrap_or("the goals in the memory");
    let mut history: Vec<Observation> = Vec::new();
    let mut memory = session.cfg.memory_content.clone();
    eprintln!("Starting vibectl {name} session");
    for n in 1..=bound {
        if n > 1 && interval > 0 && !semi {
            eprintln!("Waiting {interval} s before the next step");
            let pause = tokio::time::sleep(std::time::Duration::from_secs(interval));
            if interrupt.race(pause).await.is_none() {
                return Err(looping::interrupted(session, name, "the pause between steps").await);
            }
        }
        looping::before_step(session, n, limit, memory.as_deref());
        let mut ctx = session.context();
        if session.cfg.memory.enabled {
            ctx.memory = memory.as_deref().filter(|m| !m.trim().is_empty());
        }
        let req = prompts::auto::step(goal, &history, &ctx);
        let Some(action) = interrupt.race(looping::next_action(session, req)).await else {
            return Err(looping::interrupted(session, name, "a model call").await);
        };
        let mut remembered = false;
        let obs = match action? {
            Action::Done { explanation, .. } => {
                let why = explanation.unwrap_or_else(|| "the goal is reached".to_owned());
                print_answer(&format!("Done: {}", why.trim()));
                let obs = Observation {
                    what: format!("Done: {why}"),
                    output: String::new(),
                };
                session
                    .remember(&looping::news(name, goal_text, n, &obs))
                    .await;
                return Ok(());
            }
            Action::Error { message } => {
                let obs = Observation {
                    what: format!("Gave up: {message}"),
                    output: String::new(),
                };
                session
                    .remember(&looping::news(name, goal_text, n, &obs))
                    .await;
                return Err(CmdError::new(format!(
                    "the model cannot carry on: {}",
                    message.trim()
                )));
            }
            Action::Command {
                commands,
                explanation,
            } => {
                let line = kubectl::display(&commands);
                out_plan(&line, explanation.as_deref());
                match command_step(session, interrupt, name, &commands, &line, semi).await? {
                    Step::Ran(obs, r) => {
                        remembered = r;
                        obs
                    }
                    Step::Exit => {
                        eprintln!("Exiting the {name} session, as asked");
                        return Ok(());
                    }
                }
            }
            Action::Thought { text } => {
                eprintln!("Thought: {}", text.trim());
                Observation {
                    what: format!("Thought: {text}"),
                    output: String::new(),
                }
            }
            Action::Feedback { message, .. } => {
                print_answer(&format!("The model asks: {}", message.trim()));
                Observation {
                    what: format!("Asked the user: {message}"),
                    output: String::new(),
                }
            }
            Action::Wait { duration_seconds } => {
                looping::wait(session, interrupt, name, duration_seconds).await?
            }
        };
        if !remembered {
            session
                .remember(&looping::news(name, goal_text, n, &obs))
                .await;
        }
        history.push(obs);
        memory = session.memory_now();
    }
    match limit {
        Some(l) => eprintln!("Completed {l} steps, as --limit asked"),
        None => eprintln!(
            "Stopped after {MAX_STEPS} steps, the most without --limit; run again to continue"
        ),
    }
    Ok(())
}

fn out_plan(line: &str, explanation: Option<&str>) {
    crate::cli::out(&crate::cli::style::command_line(line));
    if let Some(e) = explanation.map(str::trim).filter(|e| !e.is_empty()) {
        crate::cli::out(&format!("  {e}\n"));
    }
}

enum Step {
    /// The step's observation, and whether the memory already has it.
    Ran(Observation, bool),
    Exit,
}

/// A COMMAND step: refusals (read-only mode, a command that would not end) and declines
/// become observations for the next step; a run is summarized and folded into the memory.
async fn command_step(
    session: &Session,
    interrupt: &mut Interrupt,
    name: &str,
    commands: &[String],
    line: &str,
    semi: bool,
) -> Result<Step, CmdError> {
    let real = session.guard.restore(commands)?;
    let refused = |why: String| {
        eprintln!("not run: {why}");
        Observation {
            what: format!("Planned `{line}`, not run: {why}"),
            output: String::new(),
        }
    };
    let class = match session.policy.allow(&real) {
        Ok(c) => c,
        Err(e) => {
            session.guard.audit_run(line, true, false, None)?;
            return Ok(Step::Ran(refused(e.message), false));
        }
    };
    if kubectl::is_streaming(&real) {
        session.guard.audit_run(line, true, false, None)?;
        return Ok(Step::Ran(
            refused("it keeps running until stopped; plan one that ends".to_owned()),
            false,
        ));
    }
    // auto asks only when security.confirmation_mode asks for more than the default; semiauto
    // asks before every step.
    let asked = if semi {
        looping::confirm(session, interrupt, line, None).await?
    } else if session.policy.confirm == Confirm::Changes {
        Some(Answer::Yes)
    } else {
        looping::confirm(session, interrupt, line, Some(&class)).await?
    };
    let Some(answer) = asked else {
        session.guard.audit_run(line, true, false, None)?;
        return Err(looping::interrupted(session, name, "the confirmation").await);
    };
    match answer {
        Answer::Yes => {}
        Answer::YesAnd(note) => {
            session
                .remember(&format!("The user approved `{line}` and said: {note}"))
                .await;
        }
        Answer::No | Answer::NoBut(_) => {
            session.guard.audit_run(line, true, false, None)?;
            let mut what = format!("Planned `{line}`; the user declined it");
            if let Answer::NoBut(why) = &answer {
                what.push_str(&format!(" because: {why}"));
            }
            eprintln!("cancelled: nothing was run");
            let obs = Observation {
                what,
                output: String::new(),
            };
            session.remember(&obs.what).await;
            return Ok(Step::Ran(obs, true));
        }
        Answer::Exit => {
            session.guard.audit_run(line, true, false, None)?;
            return Ok(Step::Exit);
        }
    }
    let Some((output, ok)) = looping::run_step(session, interrupt, commands, &real).await? else {
        return Err(looping::interrupted(session, name, &format!("`{line}`")).await);
    };
    if ok {
        let summarized = plan::summarize(session, line, &output, None, false);
        match interrupt.race(summarized).await {
            Some(r) => r?,
            None => return Err(looping::interrupted(session, name, "the summary").await),
        }
    } else {
        eprintln!("{line} failed; the model sees why in the next step");
        session
            .remember(&format!("Ran `{line}`, which failed:\n{output}"))
            .await;
    }
    Ok(Step::Ran(
        Observation {
            what: format!("Ran `{line}`"),
            output,
        },
        true,
    ))
}
