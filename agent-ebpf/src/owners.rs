//! Which process owns a socket, learned only where the kernel context makes it certain.
//!
//! Resets are mostly sent and received in softirq, where `current` names whatever task the
//! interrupt landed on. BPF programs on tracepoints cannot tell softirq from process context
//! (the kernel overwrites the record's `common_flags` with a pt_regs pointer for them), so the
//! owner is recorded only on state changes that happen exclusively inside a system call:
//! connect() (→ SYN_SENT), listen() (→ LISTEN), and close()/shutdown() (ESTABLISHED → FIN_WAIT1,
//! CLOSE_WAIT → LAST_ACK). An accepted socket, born in softirq, inherits its listener's owner.

use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid};
use tcpwhy_common::{
    owner::{ListenerKey, OWNER_FROM_LISTENER, OWNER_FROM_SYSCALL, Owner},
    tcp_state as st,
};

use crate::{
    kernel::{Memory, socket_netns},
    maps::LISTENER_OWNERS,
};

/// Transitions only a system call on the socket can cause, so `current` is its owner.
#[inline(always)]
fn made_by_syscall(old: u8, new: u8) -> bool {
    matches!(
        (old, new),
        (_, st::SYN_SENT)
            | (_, st::LISTEN)
            | (st::ESTABLISHED, st::FIN_WAIT1)
            | (st::CLOSE_WAIT, st::LAST_ACK)
    )
}

/// Listeners are keyed by namespace and port only: a dual-stack listener accepts both families.
#[inline(always)]
fn listener_key<M: Memory>(memory: M, sk: u64) -> ListenerKey {
    ListenerKey {
        netns: socket_netns(memory, sk),
        port: memory.read::<u16>(sk, |l| &l.skc_num).unwrap_or(0),
        _pad: 0,
    }
}

/// The owner this transition of `sk` reveals ([`Owner::UNKNOWN`] if none); keeps the listeners' owners, which
/// accepted sockets inherit, up to date.
#[inline(always)]
pub fn revealed_by<M: Memory>(memory: M, sk: u64, old: u8, new: u8) -> Owner {
    if made_by_syscall(old, new) {
        let owner = Owner {
            pid: (bpf_get_current_pid_tgid() >> 32) as u32,
            source: OWNER_FROM_SYSCALL,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        };
        if new == st::LISTEN {
            let _ = LISTENER_OWNERS.insert(listener_key(memory, sk), owner, 0);
        }
        return owner;
    }
    if old == st::SYN_RECV && new == st::ESTABLISHED {
        // SAFETY: copied out at once.
        return match unsafe { LISTENER_OWNERS.get(listener_key(memory, sk)) } {
            Some(listener) => Owner {
                source: OWNER_FROM_LISTENER,
                ..*listener
            },
            None => Owner::UNKNOWN,
        };
    }
    if old == st::LISTEN && new == st::CLOSE {
        let _ = LISTENER_OWNERS.remove(listener_key(memory, sk));
    }
    Owner::UNKNOWN
}
