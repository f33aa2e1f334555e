//! Helpers shared by the integration tests.

pub mod mock;
pub mod process;
pub mod python;
pub mod server;
