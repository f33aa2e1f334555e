//! Clients and operators that try to get around the server's guarantees: streams cancelled to
//! dodge the quotas, and config reloads that would quietly weaken a running server.
//!
//! - [`cancel`]: a stream dropped, timed out or broken off mid-way is charged what it used.
//! - [`reload`]: an empty, half-written or weakening config is refused and the old one serves.
//! - [`upstream`]: a hostile provider cannot hold a call past its bounds or fill the memory.

mod cancel;
mod reload;
mod upstream;
