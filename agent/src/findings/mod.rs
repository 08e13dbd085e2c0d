//! Findings: resets grouped by kind, cause and local endpoint, each with its explanation.

pub mod finding;
pub mod group;
