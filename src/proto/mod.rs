//! The gRPC wire protocol shared with vibectl 0.11.6 (`vibectl.llm_proxy`), generated from
//! `proto/llm_proxy.proto` by `cargo run -p codegen`.

#[rustfmt::skip]
#[allow(clippy::all, missing_docs)]
mod generated {
    include!("generated/vibectl.llm_proxy.rs");
}

pub use generated::*;

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("generated/descriptor.bin");
