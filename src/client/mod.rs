//! The client side of a connection: startup negotiation and authentication.

pub mod auth;
pub mod startup;
