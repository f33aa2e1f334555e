//! What the loops (`auto`, `semiauto`, `check`) share: asking the model for the next step
//! (one corrective retry when the answer is not a step), running a step's kubectl command
//! through the session's guard (redaction, audit) with Ctrl-C ending it, the lines printed
//! before a step (`display.show_iterations`, `display.show_memory`), and the exit on Ctrl-C
//! (memory saved, exit 130).

use std::future::Future;

use super::kubectl;
use super::safety::Class;
use super::session::{Answer, Session};
use crate::cli::{CmdError, out};
use crate::llm::adapter::LlmRequest;
use crate::prompts::steps::{self, Action, Observation};

/// The exit code after Ctrl-C, as a shell reports a process ended by SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Ctrl-C, caught from the moment a loop starts so none is lost between two steps.
pub struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    /// Start catching Ctrl-C (from here on it no longer kills vibectl outright).
    pub fn catch() -> Result<Interrupt, CmdError> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| CmdError::new(format!("cannot catch Ctrl-C: {e}")))?;
            Ok(Interrupt { signal })
        }
        #[cfg(not(unix))]
        Ok(Interrupt {})
    }

    /// `f`'s output, or `None` when the user pressed Ctrl-C first (`f` is then dropped: a
    /// model call is abandoned, a kubectl run killed).
    pub async fn race<F: Future>(&mut self, f: F) -> Option<F::Output> {
        #[cfg(unix)]
        {
            tokio::select! {
                v = f => Some(v),
                _ = self.signal.recv() => None,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::select! {
                v = f => Some(v),
                _ = tokio::signal::ctrl_c() => None,
            }
        }
    }
}

/// Ask before a step runs `line`: with `class`, when the policy asks for it; without (semiauto),
/// always, offering to end the session. `None` when the user pressed Ctrl-C at the prompt (the
/// question waits on its own thread, so Ctrl-C is not held up by the read).
pub async fn confirm(
    session: &Session,
    interrupt: &mut Interrupt,
    line: &str,
    class: Option<&Class>,
) -> Result<Option<Answer>, CmdError> {
    if let Some(c) = class
        && !session.policy.must_ask(c, session.approved())
    {
        return Ok(Some(Answer::Yes));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let line = line.to_owned();
    let memory = session.context().memory.map(str::to_owned);
    let exit = class.is_none();
    // A plain thread, not the runtime's blocking pool: the process may end while it still
    // waits on stdin.
    std::thread::spawn(move || {
        let _ = tx.send(super::session::ask(&line, memory.as_deref(), exit));
    });
    match interrupt.race(rx).await {
        None => Ok(None),
        Some(Ok(answer)) => {
            let answer = answer?;
            if answer.approved() {
                session.set_approved();
            }
            Ok(Some(answer))
        }
        Some(Err(_)) => Err(CmdError::new(
            "the confirmation prompt ended without an answer",
        )),
    }
}

/// The `Wait` step of `command`'s loop: the pause the model asked for, at most
/// [`steps::MAX_WAIT_SECONDS`], ended early (as an interruption) by Ctrl-C.
pub async fn wait(
    session: &Session,
    interrupt: &mut Interrupt,
    command: &str,
    duration_seconds: u64,
) -> Result<Observation, CmdError> {
    let secs = duration_seconds.min(steps::MAX_WAIT_SECONDS);
    eprintln!("Waiting {secs} s, as the model asked");
    let pause = tokio::time::sleep(std::time::Duration::from_secs(secs));
    if interrupt.race(pause).await.is_none() {
        return Err(interrupted(session, command, "a wait").await);
    }
    Ok(Observation {
        what: format!("Waited {secs} s"),
        output: String::new(),
    })
}

/// After Ctrl-C: say so, fold what was under way into the memory, and exit 130.
pub async fn interrupted(session: &Session, command: &str, during: &str) -> CmdError {
    eprintln!();
    eprintln!("interrupted: vibectl {command} stopped during {during}");
    session
        .remember(&format!(
            "The user interrupted vibectl {command} with Ctrl-C during {during}."
        ))
        .await;
    session.finish();
    CmdError::exit(EXIT_INTERRUPTED)
}

/// Ask for the next step; an answer that is not a step gets one corrective retry.
pub async fn next_action(session: &Session, req: LlmRequest) -> Result<Action, CmdError> {
    let answer = session.ask("step", req.clone()).await?;
    let problem = match steps::parse(&answer) {
        Ok(a) => return Ok(a),
        Err(p) => p,
    };
    tracing::debug!(%problem, "the step was not valid; asking again");
    let retry = crate::prompts::plan_retry(&req, &answer, &problem);
    let answer = session.ask("step (retry)", retry).await?;
    steps::parse(&answer).map_err(|problem| {
        CmdError::new(format!(
            "the model did not answer with a valid step, even after a retry: {problem}"
        ))
        .with_hint("try again, rephrase the request, or pick another model with --model")
    })
}

/// The iteration line and the memory (as it is now), before a step, as `display.*` asks.
pub fn before_step(session: &Session, n: u32, limit: Option<u32>, memory: Option<&str>) {
    let d = &session.cfg.display;
    if d.show_iterations {
        match limit {
            Some(l) => eprintln!("Iteration {n}/{l}"),
            None => eprintln!("Iteration {n}"),
        }
    }
    if d.show_memory {
        match memory.map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => eprintln!("Memory:\n{m}"),
            None => eprintln!("Memory: (empty)"),
        }
    }
}

/// A step's kubectl run: its output for the next prompt (stdout, or what went wrong) and
/// whether it succeeded. `None` when the user pressed Ctrl-C (kubectl is killed).
pub async fn run_step(
    session: &Session,
    interrupt: &mut Interrupt,
    shown: &[String],
    real: &[String],
) -> Result<Option<(String, bool)>, CmdError> {
    let line = kubectl::display(shown);
    if session.cfg.display.show_kubectl {
        out(&crate::cli::style::command_line(&line));
    }
    let Some(run) = interrupt
        .race(kubectl::capture_async(&session.cfg, real))
        .await
    else {
        session.guard.audit_run(&line, true, true, None)?;
        return Ok(None);
    };
    let run = run?;
    session
        .guard
        .audit_run(&line, true, true, run.status.code())?;
    if run.status.success() {
        return Ok(Some((run.stdout, true)));
    }
    let how = run
        .status
        .code()
        .map_or("a signal".to_owned(), |c| format!("exit status {c}"));
    let text = format!(
        "kubectl failed with {how}.\n{}\n{}",
        run.stderr.trim(),
        run.stdout.trim()
    );
    Ok(Some((text.trim().to_owned(), false)))
}

/// The memory note of one step.
pub fn news(command: &str, goal: &str, step: u32, obs: &Observation) -> String {
    let mut s = format!("vibectl {command} ({goal}), step {step}: {}", obs.what);
    if !obs.output.trim().is_empty() {
        s.push_str(&format!("\nResult:\n{}", obs.output.trim()));
    }
    s
}
