//! Events from the programs, decoded into typed evidence.

pub mod close;
pub mod drop;
pub mod flow;
pub mod reset;
