//! vibectl: a kubectl assistant that plans and explains kubectl commands with an LLM, and
//! `vibectl-server`, the central gRPC LLM proxy that holds provider keys for a team.
//!
//! The map of the crate:
//! - [`config`]: the config engine over the generated client and server schemas.
//! - [`proto`]: the generated gRPC protocol, shared with vibectl 0.11.6.
//! - [`llm`]: provider clients (Anthropic, OpenAI and compatible, Ollama) and model adapters.
//! - [`prompts`]: every prompt the client sends, and the JSON Schema of a plan.
//! - [`audit`]: the client's audit log (one JSON line per model call and kubectl command).
//! - [`cli`]: the subcommands of both binaries, one file each.
//! - [`redact`]: finds secrets in kubectl output and swaps them for placeholders and back.

pub mod audit;
pub mod cli;
pub mod config;
pub mod llm;
pub mod prompts;
pub mod proto;
pub mod redact;
pub mod server;
