//! Helpers shared by the integration tests.

pub mod mock;
pub mod server;
