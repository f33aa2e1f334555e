//! Upstream LLM providers: provider-neutral chat types and thin HTTP clients for the Anthropic
//! Messages, OpenAI Chat Completions (and compatible) and Ollama chat APIs.
//!
//! The server's upstream calls and the client's direct mode both go through
//! [`ProviderClient`]: [`ProviderClient::complete`] for a whole answer,
//! [`ProviderClient::stream`] for pieces as they arrive.
//!
//! Other modules of `llm` (model adapters, the gRPC proxy adapter) are declared below the
//! provider modules.

pub mod adapter;
pub mod anthropic;
pub mod choose;
pub mod client;
pub mod direct;
pub mod error;
mod h1;
pub mod keys;
mod lines;
pub mod ollama;
pub mod openai;
pub mod provider;
pub mod proxy;
pub mod proxy_url;
pub mod select;
pub mod stream;

pub use client::{HttpClient, ProviderClient, ProviderOptions};
pub use error::ProviderError;
pub use provider::{
    ChatRequest, ChatResponse, ProviderKind, StreamEvent, UnknownProvider, Usage, kind_for_model,
};
pub use stream::ChatStream;

// Further `llm` modules (adapters, proxy client) go here.
