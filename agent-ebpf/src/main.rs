//! tcpwhy's eBPF programs.
//!
//! Every program here only gathers evidence (socket state, flags, unread bytes, the owner, the
//! kernel's own reason) and hands it to user space; deciding *why* a reset happened is user
//! space's job (`agent/src/explain`), where the kernel's reason names are known from BTF.
#![no_std]
#![no_main]
// BPF atomic adds: core's atomic types have no read-modify-write on this target.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod addresses;
mod context;
mod drops;
mod flow;
mod kernel;
mod latency;
mod layout;
mod listen_backlog;
mod listen_overflow;
mod maps;
mod netfilter_reset;
mod owners;
mod reset_aggregate;
mod reset_event;
mod reset_received;
mod reset_sent;
mod retransmit;
mod segment;
mod silent_close;
mod sockets;
mod state_change;
mod synack;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// `bpf_probe_read_kernel` is GPL-only; the kernel accepts this dual licence as GPL-compatible.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
