//! Deciding why: cause ids, the rules that pick them from evidence, and the words that explain
//! them to a person.

pub mod cause;
pub mod classifier;
pub mod narrative;
pub mod queue_narrative;
pub mod reset_rules;
