//! Config reloads that would weaken a running server.
