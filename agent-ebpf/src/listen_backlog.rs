//! Records the backlog each listen() asks for. The kernel silently caps it at
//! `net.core.somaxconn`, and sock_diag only shows the capped value; comparing the two is how
//! tcpwhy tells a user their backlog was cut.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use tcpwhy_common::owner::ListenCall;

use crate::{context::tracepoint_field, maps::LISTEN_BACKLOGS};

#[tracepoint(category = "syscalls", name = "sys_enter_listen")]
pub fn sys_enter_listen(ctx: TracePointContext) -> u32 {
    // Syscall arguments are stored as 8-byte slots whatever their C type.
    let (Ok(fd), Ok(backlog)) = (
        tracepoint_field::<u64>(&ctx, |l| &l.tp_listen_fd),
        tracepoint_field::<u64>(&ctx, |l| &l.tp_listen_backlog),
    ) else {
        return 0;
    };
    let call = ListenCall {
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        fd: fd as u32,
    };
    // listen() with a negative backlog means "the maximum"; store it as the int it was.
    let _ = LISTEN_BACKLOGS.insert(call, backlog as i32 as u32, 0);
    0
}
