//! The contract between tcpwhy's eBPF programs and its user-space agent.
//!
//! Everything both sides must agree on lives here and nowhere else: the names of the maps, the
//! layout of the events the programs emit, and the table of kernel struct offsets that user space
//! resolves from BTF and hands to the programs (Rust eBPF has no CO-RE relocations, so the
//! programs cannot resolve offsets themselves).
#![no_std]

pub mod close;
pub mod drop;
pub mod family;
pub mod flow;
pub mod headers;
pub mod latency;
pub mod layout;
pub mod listen_overflow;
pub mod maps;
pub mod owner;
pub mod programs;
pub mod reset;
pub mod socket;
pub mod synack;
pub mod tcp_state;
