//! Events from the programs, decoded into typed evidence.

pub mod flow;
pub mod reset;
