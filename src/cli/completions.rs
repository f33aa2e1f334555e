//! `completions SHELL`: print the completion script (the same as the checked-in `completions/`).

use clap::ValueEnum;

use super::{CmdResult, out};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

const VIBECTL: [&str; 3] = [
    include_str!("../../completions/vibectl.bash"),
    include_str!("../../completions/_vibectl"),
    include_str!("../../completions/vibectl.fish"),
];
const VIBECTL_SERVER: [&str; 3] = [
    include_str!("../../completions/vibectl-server.bash"),
    include_str!("../../completions/_vibectl-server"),
    include_str!("../../completions/vibectl-server.fish"),
];

/// Print the script of `bin` (`vibectl` or `vibectl-server`) for `shell`.
pub fn run(bin: &str, shell: Shell) -> CmdResult {
    let scripts = if bin == "vibectl-server" {
        VIBECTL_SERVER
    } else {
        VIBECTL
    };
    out(scripts[shell as usize]);
    Ok(())
}
