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
pub mod retry;
pub mod select;
pub mod stream;

pub use client::{HttpClient, ProviderClient, ProviderOptions};
pub use error::ProviderError;
pub use provider::{
    ChatRequest, ChatResponse, MAX_TOOL_CALLS, Message, ProviderKind, Role, StopReason,
    StreamEvent, ToolCall, ToolChoice, ToolDef, ToolResult, UnknownProvider, Usage, kind_for_model,
};
pub use stream::ChatStream;

// Further `llm` modules (adapters, proxy client) go here.

#[cfg(test)]
mod tests {
    /// The provider modules and the leaf modules they share sit below `client`: none of them
    /// imports it, so `client` -> providers is the only direction.
    #[test]
    fn provider_modules_do_not_import_the_client() {
        let below_client = [
            ("anthropic.rs", include_str!("anthropic.rs")),
            ("openai.rs", include_str!("openai.rs")),
            ("ollama.rs", include_str!("ollama.rs")),
            ("provider.rs", include_str!("provider.rs")),
            ("stream.rs", include_str!("stream.rs")),
            ("lines.rs", include_str!("lines.rs")),
            ("error.rs", include_str!("error.rs")),
        ];
        for (file, source) in below_client {
            for import in ["super::client", "llm::client", "super::{client"] {
                assert!(
                    !source.contains(import),
                    "src/llm/{file} uses `{import}`: move what it needs to a leaf module"
                );
            }
        }
    }
}
