//! The integration test crate: each test file (`tests/NAME.rs`, or `tests/NAME/mod.rs` so that
//! cargo does not also build it as a test crate of its own) is a module of this one binary, and
//! `support/` holds the helpers they share: the config builder and the in-process server
//! (`server`), the real `serve` process (`spawned`), the mock provider (`mock`), bounded waits
//! (`wait`) and process runs (`process`), and the command-line helpers (`cli`).

mod support;

mod cache;
mod governance;
mod hostile;
mod http;
mod providers;
mod retry;
mod routing;
mod server;
mod tls;

mod client;
mod interop;

mod examples;

mod completion_bash;
mod config_cli;
mod config_props;
mod config_samples;
mod dead_keys;
mod generated_fresh;
mod no_key_literals;
mod parsers;
mod prompts;

mod readme;
mod redact;
