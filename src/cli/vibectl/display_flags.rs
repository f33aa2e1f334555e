//! The display and memory flags of vibectl 0.11.6 (`--show-raw-output`, `--show-kubectl`,
//! `--show-vibe`, `--show-streaming`, `--show-metrics`, `--mode`, `--freeze-memory`, and their
//! `--no-`/`--unfreeze-` opposites): each sets its config key for this run only.

use clap::{Args, ValueEnum};

use crate::config::generated::client::key;

/// `--mode`: how planned commands are confirmed, as 0.11.6 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecMode {
    /// Ask before commands that can change the cluster (the default)
    Manual,
    /// Never ask (like --yes)
    Auto,
    /// Ask before commands that can change the cluster; the semiauto loop also asks each step
    Semiauto,
}

#[derive(Debug, Clone, Default, Args)]
pub struct DisplayFlags {
    /// Print kubectl's raw output too (display.show_raw_output for this run)
    #[arg(long, global = true, overrides_with = "no_show_raw_output")]
    pub show_raw_output: bool,
    /// Do not print kubectl's raw output
    #[arg(long, global = true, overrides_with = "show_raw_output")]
    pub no_show_raw_output: bool,
    /// Print the model's summary (display.show_vibe for this run)
    #[arg(long, global = true, overrides_with = "no_show_vibe")]
    pub show_vibe: bool,
    /// Do not ask the model for a summary
    #[arg(long, global = true, overrides_with = "show_vibe")]
    pub no_show_vibe: bool,
    /// Print each kubectl command line before it runs (display.show_kubectl for this run)
    #[arg(long, global = true, overrides_with = "no_show_kubectl")]
    pub show_kubectl: bool,
    /// Do not print the kubectl command line
    #[arg(long, global = true, overrides_with = "show_kubectl")]
    pub no_show_kubectl: bool,
    /// Print the answer as it streams in (display.show_streaming for this run)
    #[arg(long, global = true, overrides_with = "no_show_streaming")]
    pub show_streaming: bool,
    /// Print the answer only when it is complete
    #[arg(long, global = true, overrides_with = "show_streaming")]
    pub no_show_streaming: bool,
    /// Which model-call metrics to print (display.show_metrics for this run)
    #[arg(long, global = true, value_name = "WHICH", value_parser = ["none", "total", "sub", "all"])]
    pub show_metrics: Option<String>,
    /// How planned commands are confirmed for this run
    #[arg(long, global = true, value_enum, value_name = "MODE")]
    pub mode: Option<ExecMode>,
    /// Do not read or update the memory in this run (memory.enabled false for this run)
    #[arg(long, global = true, conflicts_with = "unfreeze_memory")]
    pub freeze_memory: bool,
    /// Read and update the memory in this run even if it is frozen (memory.enabled true)
    #[arg(long, global = true)]
    pub unfreeze_memory: bool,
}

impl DisplayFlags {
    /// The keys these flags set: key, value, flag.
    pub fn overrides(&self) -> Vec<(&'static str, &str, &'static str)> {
        let mut out = Vec::new();
        let mut pair = |on: bool, off: bool, k: &'static str, yes: &'static str, no| {
            if on {
                out.push((k, "true", yes));
            } else if off {
                out.push((k, "false", no));
            }
        };
        pair(
            self.show_raw_output,
            self.no_show_raw_output,
            key::DISPLAY_SHOW_RAW_OUTPUT,
            "--show-raw-output",
            "--no-show-raw-output",
        );
        pair(
            self.show_vibe,
            self.no_show_vibe,
            key::DISPLAY_SHOW_VIBE,
            "--show-vibe",
            "--no-show-vibe",
        );
        pair(
            self.show_kubectl,
            self.no_show_kubectl,
            key::DISPLAY_SHOW_KUBECTL,
            "--show-kubectl",
            "--no-show-kubectl",
        );
        pair(
            self.show_streaming,
            self.no_show_streaming,
            key::DISPLAY_SHOW_STREAMING,
            "--show-streaming",
            "--no-show-streaming",
        );
        pair(
            self.unfreeze_memory,
            self.freeze_memory,
            key::MEMORY_ENABLED,
            "--unfreeze-memory",
            "--freeze-memory",
        );
        if let Some(m) = &self.show_metrics {
            out.push((key::DISPLAY_SHOW_METRICS, m.as_str(), "--show-metrics"));
        }
        out
    }
}
