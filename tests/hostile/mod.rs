//! Clients and operators that try to get around the server's guarantees: streams cancelled to
//! dodge the quotas, config reloads that would quietly weaken a running server, and sockets or
//! streams held open to exhaust it.
//!
//! - [`connections`]: silent sockets, streams past the per-connection limit, and health
//!   `Watch` without a token, while a well-behaved client's calls succeed.
//! - [`cancel`]: a stream dropped, timed out or broken off mid-way is charged what it used.
//! - [`reload`]: an empty, half-written or weakening config is refused and the old one serves.
//! - [`names`]: made-up model names are bounded, and never labels or usage records as sent.
//! - [`input`]: the input limit covers the schema; schema and request id have caps of their own.
//! - [`secrets`]: provider text, addresses, tokens and keys stay out of what clients and logs
//!   see; token lifetimes cannot overflow; private files stay private.
//! - [`upstream`]: a hostile provider cannot hold a call past its bounds or fill the memory.

mod cancel;
mod connections;
mod input;
mod names;
mod reload;
mod secrets;
mod upstream;
