//! Events from the programs, decoded into typed evidence.

pub mod endpoint;
pub mod flow;
pub mod reset;
pub mod ring;
pub mod tcp_state;
