//! Records the backlog each listen() asks for. The kernel silently caps it at
//! `net.core.somaxconn`, and sock_diag only shows the capped value; comparing the two is how
//! tcpwhy tells a user their backlog was cut.
//!
//! Two ways in. Where the kernel lets a program read the registers of the system call it runs in
//! (see the layout's `regs_*`), the BTF state-change program takes the backlog from listen()'s
//! registers when the socket enters LISTEN. Elsewhere the `sys_enter_listen` tracepoint does:
//! enabling any syscall tracepoint sends every system call of every process through the slow
//! path (about 50 ns each, measured), so it is only the fallback. A second listen() on a socket
//! that already listens changes no state, and only the tracepoint sees it.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use tcpwhy_common::{layout::ABSENT, owner::ListenCall};

use crate::{
    context::tracepoint_field,
    kernel::{Memory, Typed},
    layout::offset,
    maps::LISTEN_BACKLOGS,
};

#[tracepoint(category = "syscalls", name = "sys_enter_listen")]
pub fn sys_enter_listen(ctx: TracePointContext) -> u32 {
    // Syscall arguments are stored as 8-byte slots whatever their C type.
    if let (Ok(fd), Ok(backlog)) = (
        tracepoint_field::<u64>(&ctx, |l| &l.tp_listen_fd),
        tracepoint_field::<u64>(&ctx, |l| &l.tp_listen_backlog),
    ) {
        record(fd, backlog);
    }
    0
}

/// Called by the BTF state-change program as a socket enters LISTEN: inside listen(), unless a
/// kernel user (or io_uring) made it listen, which the system call's number tells apart.
#[inline(always)]
pub fn from_syscall_registers() {
    // A constant to the verifier: where it is absent, the helper calls below are dead code and
    // removed before the kernel checks they exist.
    if offset(|l| &l.regs_syscall_nr) == ABSENT {
        return;
    }
    // SAFETY: helper calls without preconditions; the task pointer is the verifier's own.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    let listen = u64::from(offset(|l| &l.listen_syscall_nr));
    if Typed.read::<u64>(regs, |l| &l.regs_syscall_nr) != Ok(listen) {
        return;
    }
    if let (Ok(fd), Ok(backlog)) = (
        Typed.read::<u64>(regs, |l| &l.regs_first_arg),
        Typed.read::<u64>(regs, |l| &l.regs_second_arg),
    ) {
        record(fd, backlog);
    }
}

#[inline(always)]
fn record(fd: u64, backlog: u64) {
    let call = ListenCall {
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        fd: fd as u32,
    };
    // listen() with a negative backlog means "the maximum"; store it as the int it was.
    let _ = LISTEN_BACKLOGS.insert(call, backlog as i32 as u32, 0);
}
