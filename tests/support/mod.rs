//! Helpers shared by the integration tests.

pub mod cli;
pub mod kube_api;
pub mod mock;
pub mod process;
pub mod python;
pub mod rust_source;
pub mod server;
pub mod spawned;
pub mod wait;
pub mod yaml;
