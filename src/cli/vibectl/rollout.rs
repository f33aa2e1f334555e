//! `rollout status|history|undo|restart|pause|resume ARGS`: `kubectl rollout SUB ARGS`,
//! summarized (`undo` is confirmed first, as in 0.11.6); `rollout vibe "REQUEST"` plans a
//! rollout command.

use clap::Subcommand;

use super::kube::{self, KubeArgs};
use super::session::Ctx;
use crate::cli::CmdResult;

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Run `kubectl rollout status ARGS` and summarize: whether the rollout is done
    ///
    /// Example: `vibectl rollout status deployment/web --timeout=60s`
    Status(KubeArgs),
    /// Run `kubectl rollout history ARGS` and summarize the revisions
    ///
    /// Example: `vibectl rollout history deployment/web`
    History(KubeArgs),
    /// Run `kubectl rollout undo ARGS` after confirming, and summarize
    ///
    /// Example: `vibectl rollout undo deployment/web --to-revision=2`
    Undo(KubeArgs),
    /// Run `kubectl rollout restart ARGS` and summarize
    ///
    /// Example: `vibectl rollout restart deployment/web`
    Restart(KubeArgs),
    /// Run `kubectl rollout pause ARGS` and summarize
    ///
    /// Example: `vibectl rollout pause deployment/web`
    Pause(KubeArgs),
    /// Run `kubectl rollout resume ARGS` and summarize
    ///
    /// Example: `vibectl rollout resume deployment/web`
    Resume(KubeArgs),
    /// Plan a `kubectl rollout` command from a request, run it (after confirming) and summarize
    ///
    /// Example: `vibectl rollout vibe "restart the web deployment"`
    Vibe(KubeArgs),
}

pub fn run(ctx: &Ctx, cmd: &RolloutCommand) -> CmdResult {
    let (sub, args) = match cmd {
        RolloutCommand::Status(a) => ("rollout status", a),
        RolloutCommand::History(a) => ("rollout history", a),
        RolloutCommand::Undo(a) => ("rollout undo", a),
        RolloutCommand::Restart(a) => ("rollout restart", a),
        RolloutCommand::Pause(a) => ("rollout pause", a),
        RolloutCommand::Resume(a) => ("rollout resume", a),
        RolloutCommand::Vibe(a) => {
            let mut words = vec!["vibe".to_owned()];
            words.extend(a.args.iter().cloned());
            return kube::run(ctx, "rollout", &KubeArgs { args: words });
        }
    };
    kube::run(ctx, sub, args)
}
