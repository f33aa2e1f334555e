//! The `vibectl-server` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use vibectl::cli::{complete, vibectl_server as app};

fn main() -> ExitCode {
    complete::init(complete::Source {
        engine: &vibectl::config::SERVER,
        file: app::completion_file,
    });
    clap_complete::CompleteEnv::with_factory(app::Cli::command).complete();
    match app::run(app::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            ExitCode::from(e.code)
        }
    }
}
