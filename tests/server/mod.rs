//! The gRPC proxy server end to end: the wiring `serve` runs, in-process on `127.0.0.1:0`
//! ([`crate::support::server::TestServer`]), its providers pointed at the mock provider
//! process, driven by the generated tonic client; and the `vibectl-server` binary
//! ([`crate::support::spawned`]).
//!
//! - [`auth`]: every RPC refuses every kind of bad token with UNAUTHENTICATED.
//! - [`protocol`]: GetServerInfo, Execute and StreamExecute on the happy path.
//! - [`bad_input`]: bad requests and upstream failures become in-band errors, never crashes.
//! - [`cost`]: the cost on the wire is the cost in the usage log and the metrics.
//! - [`shutdown`]: draining calls in flight, refusing new connections, the drain deadline.
//! - [`cli`]: `serve` and `generate-token` as a user runs them.

mod auth;
mod bad_input;
mod cli;
mod cost;
mod protocol;
mod shutdown;

use futures_util::StreamExt;
use tonic::Streaming;
use vibectl::proto::{StreamChunk, stream_chunk::ChunkType};

use crate::support::server::within;

/// Every chunk of a stream, in order, until it ends (bounded).
pub async fn collect_chunks(stream: Streaming<StreamChunk>) -> Vec<ChunkType> {
    within("the stream", async {
        stream
            .map(|c| {
                c.unwrap_or_else(|s| panic!("the stream failed with a gRPC status: {s:?}"))
                    .chunk_type
                    .expect("a chunk type")
            })
            .collect::<Vec<_>>()
            .await
    })
    .await
}
