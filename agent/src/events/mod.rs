//! Events from the programs, decoded into typed evidence.

pub mod drop;
pub mod flow;
pub mod reset;
