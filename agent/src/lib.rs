//! tcpwhy: explains why TCP connections are reset, from eBPF probes.
//!
//! The `tcpwhy` binary is [`main`]. The library exists so that the fuzz targets (`fuzz/`) can
//! reach the parsers of untrusted bytes, and only those: the rest stays private to the crate.

mod analysis;
mod app;
mod cli;
mod daemon;
mod diagnose;
mod engine;
mod events;
mod generate;
mod host;
mod kernel;
mod metrics;
mod model;
mod probes;
mod settings;
mod watch;

pub mod parsers;

pub use app::main;
