//! What the commands that call the model share: the effective config, the adapter (direct or
//! proxied, chosen once), model calls with the spinner, streaming and metrics, and the memory.
//! Everything printed here is the same whichever adapter answered.

use crate::cli::style::{Role, Stream, paint};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::PathBuf;

use futures_util::StreamExt;

use super::guard::Guard;
use super::safety::{Class, Policy};
use super::spinner::Spinner;
use crate::cli::{CmdError, CmdResult, out, process_env, warn};
use crate::config::generated::client::{DisplayShowMetrics, key};
use crate::config::{CLIENT, ClientConfig, ConfigError, KeyPath, Loaded, Origin, Override};
use crate::llm::adapter::{AdapterEvent, LlmMetrics, LlmRequest, ModelAdapter};
use crate::llm::choose::{self, Mode};
use crate::prompts;

/// What a model command is given by the command line.
pub struct Ctx {
    pub file: PathBuf,
    pub overrides: Vec<Override>,
    /// `--yes`: run planned commands without asking.
    pub yes: bool,
    /// `--read-only`: refuse commands that can change the cluster.
    pub read_only: bool,
    /// `--config-dir` chose the config directory (the audit file's default follows it).
    pub dir_flag: bool,
    /// `--mode`: overrides how planned commands are confirmed, as in 0.11.6.
    pub mode: Option<super::display_flags::ExecMode>,
}

impl Ctx {
    /// The file as read and the effective typed config.
    pub fn load(&self) -> Result<(Loaded, ClientConfig), CmdError> {
        let loaded = CLIENT.load(&self.file)?;
        CLIENT.validate(&loaded)?;
        let effective = CLIENT.effective(&loaded, &process_env, &self.overrides)?;
        let cfg: ClientConfig = CLIENT.typed(&effective)?;
        crate::cli::style::set_theme(cfg.display.theme);
        crate::cli::style::set_colored(cfg.display.colored_output);
        Ok((loaded, cfg))
    }

    /// The read-only and confirmation rules for `cfg` and this run's flags.
    pub fn policy(&self, cfg: &ClientConfig) -> Policy {
        use super::display_flags::ExecMode;
        let mut policy = Policy::new(cfg, &choose::mode(cfg), self.read_only, self.yes);
        match self.mode {
            Some(ExecMode::Auto) => policy.confirm = super::safety::Confirm::Never,
            Some(ExecMode::Manual | ExecMode::Semiauto) => {
                policy.confirm = super::safety::Confirm::Changes
            }
            None => {}
        }
        policy
    }
}

/// One command's model session. Create it inside the runtime (a proxy channel needs one).
pub struct Session {
    pub cfg: ClientConfig,
    pub mode: Mode,
    /// Read-only mode and when to confirm.
    pub policy: Policy,
    /// Whether the user said yes to a planned command in this run (for per-session).
    approved: std::cell::Cell<bool>,
    /// Redaction and the audit log, around every model call and kubectl run.
    pub guard: Guard,
    file: PathBuf,
    adapter: Box<dyn ModelAdapter>,
    /// The model to ask; `None` lets a proxy use its default.
    model: Option<String>,
    /// Calls made and their summed metrics, for the total line.
    totals: RefCell<(u32, LlmMetrics)>,
    /// The installed prompt plugins, resolved by `plugins.precedence`.
    plugins: prompts::plugin::Prompts,
    /// The memory as this run last saved it (`None`: as loaded).
    saved_memory: RefCell<Option<String>>,
}

impl Session {
    pub fn open(ctx: &Ctx) -> Result<Session, CmdError> {
        let (loaded, cfg) = ctx.load()?;
        crate::cli::init_logging(cfg.system.log_level.as_str());
        let mode = choose::mode(&cfg);
        let adapter = choose::adapter(&cfg, &process_env)?;
        // Through a proxy, a model left at its built-in default defers to the server's default.
        let origin = CLIENT.origin(
            &loaded,
            &process_env,
            &ctx.overrides,
            &KeyPath::template(key::LLM_MODEL),
        );
        let model = match (&mode, origin) {
            (Mode::Proxy { .. }, Origin::Default) => None,
            _ => Some(cfg.llm.model.clone()),
        };
        tracing::debug!(
            command = %std::env::args().skip(1).collect::<Vec<_>>().join(" "),
            model = model.as_deref().unwrap_or("(the server's default)"),
            via = ?mode,
            "vibectl session"
        );
        let policy = ctx.policy(&cfg);
        let guard = Guard::open(&cfg, &mode, &ctx.file, ctx.dir_flag)?;
        let plugins = super::plugin::resolved(&ctx.file, &cfg);
        Ok(Session {
            plugins,
            saved_memory: RefCell::new(None),
            policy,
            guard,
            approved: std::cell::Cell::new(false),
            cfg,
            mode,
            file: ctx.file.clone(),
            adapter,
            model,
            totals: RefCell::new((0, LlmMetrics::default())),
        })
    }

    pub fn adapter(&self) -> &dyn ModelAdapter {
        self.adapter.as_ref()
    }

    /// The memory and custom instructions every prompt carries.
    pub fn context(&self) -> prompts::Context<'_> {
        prompts::Context {
            memory: self
                .cfg
                .memory_content
                .as_deref()
                .filter(|_| self.cfg.memory.enabled),
            instructions: self.cfg.system.custom_instructions.as_deref(),
            now: None,
            plugins: Some(&self.plugins),
        }
    }

    fn request(&self, mut req: LlmRequest) -> LlmRequest {
        req.model = self.model.clone();
        req
    }

    /// Log a call about to be made: which, to which model, how big.
    fn log_call(&self, label: &str, req: &LlmRequest, streaming: bool) {
        let chars: usize = req.system.iter().chain(&req.user).map(|f| f.len()).sum();
        tracing::debug!(
            call = label,
            model = req.model.as_deref().unwrap_or("(the server's default)"),
            system_fragments = req.system.len(),
            user_fragments = req.user.len(),
            prompt_bytes = chars,
            structured = req.response_schema.is_some(),
            streaming,
            "asking the model"
        );
    }

    /// One whole answer, not printed; `label` names the call in the metrics and the audit log.
    pub async fn ask(&self, label: &str, req: LlmRequest) -> Result<String, CmdError> {
        let mut req = self.request(req);
        let found = self.guard.protect(label, &mut req);
        self.log_call(label, &req, false);
        let spinner = Spinner::start(label);
        let resp = self.adapter.execute(&req).await;
        drop(spinner);
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.guard.audit_call(label, &req, "", None, &found)?;
                return Err(e.into());
            }
        };
        self.guard
            .audit_call(label, &req, &resp.text, Some(&resp.model), &found)?;
        self.record(label, &resp.metrics);
        Ok(resp.text)
    }

    /// An answer printed to stdout: piece by piece as it streams in when
    /// `display.show_streaming` is on, else whole. The printed text is the same either way.
    pub async fn show(&self, label: &str, req: LlmRequest) -> Result<String, CmdError> {
        if !self.cfg.display.show_streaming {
            let text = self.ask(label, req).await?;
            print_answer(&crate::cli::markup::for_stdout(&text));
            return Ok(text);
        }
        let mut req = self.request(req);
        let found = self.guard.protect(label, &mut req);
        self.log_call(label, &req, true);
        let mut spinner = Some(Spinner::start(label));
        let mut events = match self.adapter.stream(&req).await {
            Ok(events) => events,
            Err(e) => {
                self.guard.audit_call(label, &req, "", None, &found)?;
                return Err(e.into());
            }
        };
        let mut text = String::new();
        let mut done = None;
        let mut model = None;
        let mut markup = crate::cli::markup::Renderer::for_stdout();
        while let Some(event) = events.next().await {
            spinner.take();
            match event {
                Ok(AdapterEvent::Text(t)) => {
                    out(&markup.push(&t));
                    text.push_str(&t);
                }
                Ok(AdapterEvent::Done { metrics, model: m }) => {
                    done = Some(metrics);
                    model = Some(m);
                    break;
                }
                Err(e) => {
                    out(&markup.finish());
                    if !text.is_empty() && !text.ends_with('\n') {
                        out("\n");
                    }
                    self.guard.audit_call(label, &req, &text, None, &found)?;
                    return Err(e.into());
                }
            }
        }
        drop(spinner);
        out(&markup.finish());
        self.guard
            .audit_call(label, &req, &text, model.as_deref(), &found)?;
        if !text.ends_with('\n') {
            out("\n");
        }
        self.record(label, &done.unwrap_or_default());
        Ok(text)
    }

    fn record(&self, label: &str, m: &LlmMetrics) {
        let mut totals = self.totals.borrow_mut();
        totals.0 += 1;
        let t = &mut totals.1;
        t.duration_ms += m.duration_ms;
        t.input_tokens = add(t.input_tokens, m.input_tokens);
        t.output_tokens = add(t.output_tokens, m.output_tokens);
        t.cost_usd = match (t.cost_usd, m.cost_usd) {
            (a, None) => a,
            (a, Some(b)) => Some(a.unwrap_or(0.0) + b),
        };
        t.retry_count += m.retry_count;
        if matches!(
            self.cfg.display.show_metrics,
            DisplayShowMetrics::Sub | DisplayShowMetrics::All
        ) {
            let line = format!("[metrics] {label}: {}", describe(m));
            eprintln!("{}", paint(Role::Metrics, Stream::Stderr, &line));
        }
    }

    /// The total metrics line, when `display.show_metrics` asks for one.
    pub fn finish(&self) {
        let (calls, m) = &*self.totals.borrow();
        if *calls > 0
            && matches!(
                self.cfg.display.show_metrics,
                DisplayShowMetrics::Total | DisplayShowMetrics::All
            )
        {
            let s = if *calls == 1 { "" } else { "s" };
            let line = format!("[metrics] total: {calls} model call{s}, {}", describe(m));
            eprintln!("{}", paint(Role::Metrics, Stream::Stderr, &line));
        }
    }

    /// Fold `news` into the memory with the model and save it, when memory is enabled. A
    /// failure here is a warning: the command itself has succeeded.
    pub async fn remember(&self, news: &str) {
        if !self.cfg.memory.enabled {
            return;
        }
        let max = self.max_memory_chars();
        let current = self.memory_now().unwrap_or_default();
        let req = self
            .context()
            .instruct(prompts::memory_update(&current, news, max));
        let result = match self.ask("memory", req).await {
            Ok(text) => {
                let kept = cut(text.trim(), max);
                let saved = save_memory(&self.file, Some(&kept)).map_err(|e| e.message);
                if saved.is_ok() {
                    *self.saved_memory.borrow_mut() = Some(kept);
                }
                saved
            }
            Err(e) => Err(e.message),
        };
        if let Err(e) = result {
            warn(&format!("the memory was not updated: {e}"));
        }
    }

    /// The memory as it is now: as this run last saved it, else as loaded.
    pub fn memory_now(&self) -> Option<String> {
        self.saved_memory
            .borrow()
            .clone()
            .or_else(|| self.cfg.memory_content.clone())
    }

    pub fn max_memory_chars(&self) -> usize {
        usize::try_from(self.cfg.memory.max_chars)
            .unwrap_or(500)
            .max(1)
    }
}

fn add(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

fn describe(m: &LlmMetrics) -> String {
    let tok = |t: Option<u32>| t.map_or("?".to_owned(), |n| n.to_string());
    let mut s = format!(
        "{} ms, {} in / {} out tokens",
        m.duration_ms,
        tok(m.input_tokens),
        tok(m.output_tokens)
    );
    if let Some(c) = m.cost_usd {
        s.push_str(&format!(", ${c:.4}"));
    }
    if m.retry_count > 0 {
        s.push_str(&format!(", {} retries", m.retry_count));
    }
    s
}

/// Print a whole answer with one trailing newline.
pub fn print_answer(text: &str) {
    if text.ends_with('\n') {
        out(text);
    } else {
        out(&format!("{text}\n"));
    }
}

/// `text` cut to `max` characters.
pub fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Write `memory_content` (`None` removes it) through the config engine, comments kept.
pub fn save_memory(file: &std::path::Path, text: Option<&str>) -> CmdResult {
    let loaded = CLIENT.load(file)?;
    let key = KeyPath::template(key::MEMORY_CONTENT);
    let new_text = match text.filter(|t| !t.is_empty()) {
        Some(t) => CLIENT.set(&loaded, &key, t)?.0,
        None => match CLIENT.unset(&loaded, &key) {
            Ok(t) => t,
            Err(ConfigError::NotSet { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        },
    };
    CLIENT.write(&loaded, &new_text)?;
    Ok(())
}

/// A kubectl run that exited with an error.
pub struct Failed {
    /// `kubectl ... failed with exit status N`.
    pub error: CmdError,
    pub stderr: String,
    pub stdout: String,
}

/// The user's answer to a confirmation, as 0.11.6 offers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// Yes, and remember this note.
    YesAnd(String),
    No,
    /// No, and remember why.
    NoBut(String),
    /// Stop the semiauto session.
    Exit,
}

impl Answer {
    pub fn approved(&self) -> bool {
        matches!(self, Answer::Yes | Answer::YesAnd(_))
    }
}

impl Session {
    /// Run kubectl with `real` (the arguments with any placeholder values put back) and return
    /// its stdout; `shown` is what the user sees and the audit log keeps. The run is recorded
    /// (`planned` says the model planned it); a failed run is an error naming `shown`.
    #[allow(dead_code)] // the API of commands that do not recover
    pub fn run_kubectl(
        &self,
        shown: &[String],
        real: &[String],
        planned: bool,
    ) -> Result<String, CmdError> {
        match self.try_kubectl(shown, real, planned)? {
            Ok(output) => Ok(output),
            Err(failed) => Err(failed.error),
        }
    }

    /// [`Session::run_kubectl`], with a failed run returned as a [`Failed`] (its error and
    /// what kubectl printed on stderr) for [`Session::recover`]. Only a kubectl that could
    /// not start, or an audit record that could not be written, is an `Err` outside.
    pub fn try_kubectl(
        &self,
        shown: &[String],
        real: &[String],
        planned: bool,
    ) -> Result<Result<String, Failed>, CmdError> {
        // The shown line: the real arguments may hold secrets put back from placeholders.
        tracing::debug!(command = %super::kubectl::display(shown), "running kubectl");
        let c = super::kubectl::capture(&self.cfg, real)?;
        self.guard.audit_run(
            &super::kubectl::display(shown),
            planned,
            true,
            c.status.code(),
        )?;
        if !super::kubectl::succeeded(real, c.status.code()) {
            return Ok(Err(Failed {
                error: super::kubectl::failed(shown, c.status),
                stderr: c.stderr,
                stdout: c.stdout,
            }));
        }
        Ok(Ok(c.stdout))
    }

    /// After kubectl failed: ask the model how to recover (when `display.show_vibe` is on),
    /// print its suggestion and fold the failure and the suggestion into the memory, as 0.11.6
    /// does; then fail with kubectl's error. A model that cannot answer is a warning.
    /// `explanation` is the plan's, when the model planned the command.
    pub async fn recover(
        &self,
        line: &str,
        failed: Failed,
        explanation: Option<&str>,
    ) -> CmdResult {
        if !self.cfg.display.show_vibe {
            return Err(failed.error);
        }
        let mut error = failed.stderr.trim().to_owned();
        if error.is_empty() {
            error = failed.stdout.trim().to_owned();
        }
        if error.is_empty() {
            error = failed.error.message.clone();
        }
        let error = prompts::clip(&error, prompts::MAX_OUTPUT_CHARS);
        let req = prompts::recovery(
            line,
            &error,
            explanation,
            self.max_memory_chars(),
            &self.context(),
        );
        match self.show("recovery", req).await {
            Ok(suggestion) => {
                self.remember(&format!(
                    "Ran: {line}\nIt failed: {error}\nSuggested next: {}",
                    suggestion.trim()
                ))
                .await;
            }
            Err(e) => warn(&format!(
                "no recovery suggestion: the model call failed: {}",
                e.message
            )),
        }
        self.finish();
        Err(failed.error)
    }

    /// Whether `line` (of `class`) may run: asks when the policy says so. The memory is shown on
    /// `m`. A yes is remembered for per-session confirmation.
    pub fn confirm(&self, line: &str, class: &Class) -> Result<Answer, CmdError> {
        if !self.policy.must_ask(class, self.approved.get()) {
            return Ok(Answer::Yes);
        }
        let answer = ask(line, self.context().memory, false)?;
        if answer.approved() {
            self.approved.set(true);
        }
        Ok(answer)
    }

    /// Whether the user said yes to a planned command in this run.
    pub fn approved(&self) -> bool {
        self.approved.get()
    }

    /// Remember a yes, for per-session confirmation.
    pub fn set_approved(&self) {
        self.approved.set(true);
    }
}

/// Ask before running `line` (offering to end the session when `exit` is set). Stdin that is
/// not a terminal cannot answer.
pub(super) fn ask(line: &str, memory: Option<&str>, exit: bool) -> Result<Answer, CmdError> {
    if !std::io::stdin().is_terminal() {
        return Err(CmdError::new(format!(
            "not running `{line}` without confirmation: stdin is not a terminal"
        ))
        .with_hint(format!(
            "pass --yes to run planned commands without asking, or set {} none",
            key::SECURITY_CONFIRMATION_MODE
        )));
    }
    let read = || -> Result<String, CmdError> {
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|e| CmdError::new(format!("cannot read the answer: {e}")))?;
        Ok(answer.trim().to_owned())
    };
    let choices = if exit {
        "[Y]es, [N]o, yes [A]nd, no [B]ut, [M]emory, or [E]xit? (y/n/a/b/m/e)"
    } else {
        "[Y]es, [N]o, yes [A]nd, no [B]ut, or [M]emory? (y/n/a/b/m)"
    };
    loop {
        eprint!("Run `{line}`? {choices} ");
        let choice = read()?.to_ascii_lowercase();
        match choice.as_str() {
            "e" | "exit" if exit => return Ok(Answer::Exit),
            "y" | "yes" => return Ok(Answer::Yes),
            "" | "n" | "no" => return Ok(Answer::No),
            "a" | "and" => {
                eprint!("What should vibectl remember? ");
                return Ok(Answer::YesAnd(read()?));
            }
            "b" | "but" => {
                eprint!("Why not? (vibectl remembers it) ");
                return Ok(Answer::NoBut(read()?));
            }
            "m" | "memory" => match memory {
                Some(m) => eprintln!("Memory:\n{}", m.trim()),
                None => eprintln!("The memory is empty."),
            },
            other => eprintln!("`{other}` is not an answer"),
        }
    }
}
