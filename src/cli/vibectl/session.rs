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
        Policy::new(cfg, &choose::mode(cfg), self.read_only, self.yes)
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
        let policy = ctx.policy(&cfg);
        let guard = Guard::open(&cfg, &mode, &ctx.file, ctx.dir_flag)?;
        Ok(Session {
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
        }
    }

    fn request(&self, mut req: LlmRequest) -> LlmRequest {
        req.model = self.model.clone();
        req
    }

    /// One whole answer, not printed; `label` names the call in the metrics and the audit log.
    pub async fn ask(&self, label: &str, req: LlmRequest) -> Result<String, CmdError> {
        let mut req = self.request(req);
        let found = self.guard.protect(label, &mut req);
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
            print_answer(&text);
            return Ok(text);
        }
        let mut req = self.request(req);
        let found = self.guard.protect(label, &mut req);
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
        while let Some(event) = events.next().await {
            spinner.take();
            match event {
                Ok(AdapterEvent::Text(t)) => {
                    out(&t);
                    text.push_str(&t);
                }
                Ok(AdapterEvent::Done { metrics, model: m }) => {
                    done = Some(metrics);
                    model = Some(m);
                    break;
                }
                Err(e) => {
                    self.guard.audit_call(label, &req, &text, None, &found)?;
                    return Err(e.into());
                }
            }
        }
        drop(spinner);
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
        let current = self.cfg.memory_content.as_deref().unwrap_or_default();
        let req = prompts::memory_update(current, news, max);
        let result = match self.ask("memory", req).await {
            Ok(text) => {
                save_memory(&self.file, Some(&cut(text.trim(), max))).map_err(|e| e.message)
            }
            Err(e) => Err(e.message),
        };
        if let Err(e) = result {
            warn(&format!("the memory was not updated: {e}"));
        }
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

/// The user's answer to a confirmation, as 0.11.6 offers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// Yes, and remember this note.
    YesAnd(String),
    No,
    /// No, and remember why.
    NoBut(String),
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
    pub fn run_kubectl(
        &self,
        shown: &[String],
        real: &[String],
        planned: bool,
    ) -> Result<String, CmdError> {
        let (output, status) = super::kubectl::capture_status(&self.cfg, real)?;
        self.guard.audit_run(
            &super::kubectl::display(shown),
            planned,
            true,
            status.code(),
        )?;
        if !super::kubectl::succeeded(real, status.code()) {
            return Err(super::kubectl::failed(shown, status));
        }
        Ok(output)
    }

    /// Whether `line` (of `class`) may run: asks when the policy says so. The memory is shown on
    /// `m`. A yes is remembered for per-session confirmation.
    pub fn confirm(&self, line: &str, class: &Class) -> Result<Answer, CmdError> {
        if !self.policy.must_ask(class, self.approved.get()) {
            return Ok(Answer::Yes);
        }
        let answer = ask(line, self.context().memory)?;
        if answer.approved() {
            self.approved.set(true);
        }
        Ok(answer)
    }
}

/// Ask before running `line`. Stdin that is not a terminal cannot answer.
fn ask(line: &str, memory: Option<&str>) -> Result<Answer, CmdError> {
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
    loop {
        eprint!("Run `{line}`? [Y]es, [N]o, yes [A]nd, no [B]ut, or [M]emory? (y/n/a/b/m) ");
        let choice = read()?.to_ascii_lowercase();
        match choice.as_str() {
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
