//! pggat: PostgreSQL-aware connection pooler and gateway.
#![forbid(unsafe_code)]

pub mod cluster;
