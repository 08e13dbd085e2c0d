//! Deciding why, from plain values: the reset rules, grouping, queue attribution, connection
//! states, and the words that explain each finding. Nothing here reads the host; the engine
//! hands it what it read.

pub mod classify;
pub mod connections;
pub mod drops;
pub mod filter;
pub mod findings;
pub mod firewall;
pub mod grouping;
pub mod latency;
pub mod lru;
pub mod narrative;
pub mod queues;
pub mod related;
pub mod reported;
pub mod reset_rules;
pub mod service;
