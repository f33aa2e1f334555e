//! Interoperability with the Python vibectl 0.11.6 (from PyPI): its raw gRPC stubs, its
//! `ProxyModelAdapter` and its `vibectl setup-proxy` CLI against our `vibectl-server` binary,
//! plaintext and TLS, and JWTs crossing both ways with a shared secret (0.11.6's own server
//! included).
//!
//! The peer comes from `scripts/setup-python-peer` (once per test process, see
//! `support::python`); the drivers are `scripts/interop/*.py`. Every process is bounded by a
//! timeout and killed when its test ends; all traffic stays on 127.0.0.1.

pub(crate) mod harness;

mod adapter;
mod audit;
mod check;
mod our_client;
mod raw_stubs;
mod setup_proxy;
mod tls;
mod tokens;
