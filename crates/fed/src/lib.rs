//! PostgreSQL v3 wire protocol.
#![forbid(unsafe_code)]

pub mod codec;
pub mod messages;
pub mod sqlstate;
