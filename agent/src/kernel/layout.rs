//! Builds the [`KernelLayout`] the programs read, from BTF and tracefs.

use std::path::Path;

use tcpwhy_common::layout::{ABSENT, KernelLayout};

use super::{btf::KernelBtf, drop_reasons, tracefs::RecordFormat};
use crate::probes::catalog::{self, Hook};

/// `oldskb`'s position in `nf_send_reset[6](net, sk, oldskb, hook)`.
const OLDSKB_AFTER_SOCKET: u32 = 2;

/// The layout and what could not be resolved (so that the attach report can say why a probe
/// lost some of its evidence).
#[derive(Debug, Clone)]
pub struct ResolvedLayout {
    pub layout: KernelLayout,
    pub missing: Vec<String>,
}

/// Resolves struct offsets from BTF. Anything missing becomes [`ABSENT`] and is listed.
pub fn resolve(btf: &KernelBtf, tracefs: Option<&Path>) -> ResolvedLayout {
    let mut missing = Vec::new();
    // Each field lists where kernels have kept it, newest first.
    let mut member = |places: &[(&str, &str)]| {
        for (strukt, path) in places {
            if let Ok(offset) = btf.member_offset(strukt, path) {
                return offset;
            }
        }
        let tried: Vec<String> = places.iter().map(|(s, p)| format!("{s}.{p}")).collect();
        missing.push(format!("none of {} in the kernel's BTF", tried.join(", ")));
        ABSENT
    };
    let mut layout = KernelLayout {
        skc_daddr: member(&[("sock_common", "skc_daddr")]),
        skc_rcv_saddr: member(&[("sock_common", "skc_rcv_saddr")]),
        skc_dport: member(&[("sock_common", "skc_dport")]),
        skc_num: member(&[("sock_common", "skc_num")]),
        skc_family: member(&[("sock_common", "skc_family")]),
        skc_state: member(&[("sock_common", "skc_state")]),
        skc_v6_daddr: member(&[("sock_common", "skc_v6_daddr")]),
        skc_v6_rcv_saddr: member(&[("sock_common", "skc_v6_rcv_saddr")]),
        skc_net: member(&[("sock_common", "skc_net")]),
        net_ns_inum: member(&[("net", "ns.inum")]),
        // 6.x moved sk_flags into sock_common as skc_flags.
        sk_flags: member(&[("sock_common", "skc_flags"), ("sock", "sk_flags")]),
        sk_lingertime: member(&[("sock", "sk_lingertime")]),
        inet_sport: member(&[("inet_sock", "inet_sport")]),
        sk_protocol: member(&[("sock", "sk_protocol")]),
        sk_err: member(&[("sock", "sk_err")]),
        icsk_retransmits: member(&[("inet_connection_sock", "icsk_retransmits")]),
        icsk_user_timeout: member(&[("inet_connection_sock", "icsk_user_timeout")]),
        sk_ack_backlog: member(&[("sock", "sk_ack_backlog")]),
        sk_max_ack_backlog: member(&[("sock", "sk_max_ack_backlog")]),
        icsk_accept_queue_qlen: member(&[("inet_connection_sock", "icsk_accept_queue.qlen")]),
        tcp_rcv_nxt: member(&[("tcp_sock", "rcv_nxt")]),
        tcp_copied_seq: member(&[("tcp_sock", "copied_seq")]),
        tcp_srtt_us: member(&[("tcp_sock", "srtt_us")]),
        tcp_total_retrans: member(&[("tcp_sock", "total_retrans")]),
        tw_substate: member(&[("inet_timewait_sock", "tw_substate")]),
        skb_head: member(&[("sk_buff", "head")]),
        skb_network_header: member(&[("sk_buff", "network_header")]),
        skb_transport_header: member(&[("sk_buff", "transport_header")]),
        skb_protocol: member(&[("sk_buff", "protocol")]),
        skb_sk: member(&[("sk_buff", "sk")]),
        skb_dev: member(&[("sk_buff", "dev")]),
        dev_nd_net: member(&[("net_device", "nd_net.net")]),
        ..KernelLayout::UNKNOWN
    };
    let mut flag = |name: &str| match btf.enum_value("sock_flags", name) {
        Ok(bit) => bit,
        Err(err) => {
            missing.push(format!("enum sock_flags: {err}"));
            ABSENT
        }
    };
    layout.sock_flag_dead = flag("SOCK_DEAD");
    layout.sock_flag_linger = flag("SOCK_LINGER");

    // The reason became the last argument of the reset functions and of the tracepoint in 6.10.
    let (_, send_reset_event) = tracepoint(&catalog::SEND_RESET);
    layout.fn_reset_has_reason =
        u32::from(btf.function_arity(catalog::V4_SEND_RESET.name).unwrap_or(0) >= 3);
    layout.tp_btf_send_reset_has_reason =
        u32::from(btf.tracepoint_arity(send_reset_event).unwrap_or(0) >= 3);

    // Where the segment is among netfilter's arguments: from BTF (the kernel's, else the
    // module's). Modules have BTF from Linux 5.11; on 5.10 a loaded module without it takes
    // `(net, sk, oldskb, hook)` like every kernel since. Not listed as missing: without the
    // module loaded there is nothing to probe (the attach report says so).
    for (hook, module, position) in [
        (
            &catalog::NF_SEND_RESET,
            "nf_reject_ipv4",
            &mut layout.nf_send_reset_skb_arg,
        ),
        (
            &catalog::NF_SEND_RESET6,
            "nf_reject_ipv6",
            &mut layout.nf_send_reset6_skb_arg,
        ),
    ] {
        *position = match btf.parameter_position(module, hook.name, "oldskb") {
            Ok(found) => found as u32,
            Err(_) if Path::new("/sys/module").join(module).exists() => OLDSKB_AFTER_SOCKET,
            Err(_) => ABSENT,
        };
    }

    let (_, kfree_skb_event) = tracepoint(&catalog::DROPS);
    layout.tp_btf_kfree_skb_arity = btf.tracepoint_arity(kfree_skb_event).unwrap_or(0) as u32;
    // Absent before 5.17, with the drop reasons themselves.
    let reasons = drop_reasons::of_kernel(btf);
    let reason = |name| reasons.value(name).unwrap_or(ABSENT);
    layout.drop_reason_not_specified = reason(drop_reasons::NOT_SPECIFIED);
    layout.drop_reason_queue_purge = reason(drop_reasons::QUEUE_PURGE);
    // A reason-blind send-reset tracepoint (before 6.10) misses the resets sent without a
    // socket; where the function probes cannot stand in for it, the drop is all there is.
    if layout.tp_btf_send_reset_has_reason != 0 {
        layout.drop_reason_no_socket_quiet = reason(drop_reasons::NO_SOCKET);
    }

    add_syscall_registers(&mut layout, btf);

    match tracefs {
        Some(tracefs) => add_tracepoint_offsets(&mut layout, tracefs, &mut missing),
        None => missing.push("tracefs unavailable: classic tracepoints cannot be used".into()),
    }
    ResolvedLayout { layout, missing }
}

/// listen() on x86-64: `listen(fd, backlog)` arrives in `di` and `si`, and `orig_ax` keeps the
/// system call's number.
const X86_64_LISTEN: u32 = 50;

/// Where the state-change program can read the registers of the system call it runs in, it
/// takes listen()'s backlog there, and the `sys_enter_listen` tracepoint is not needed: enabling
/// any syscall tracepoint sends every system call on the host through the slow path. That needs
/// `bpf_task_pt_regs` (Linux ≥ 5.15) and a known calling convention (x86-64 only, for now).
/// Not listed as missing: the tracepoint does the same job, at that cost.
fn add_syscall_registers(layout: &mut KernelLayout, btf: &KernelBtf) {
    if !cfg!(target_arch = "x86_64")
        || btf
            .enum_value("bpf_func_id", "BPF_FUNC_task_pt_regs")
            .is_err()
    {
        return;
    }
    let register = |name| btf.member_offset("pt_regs", name).ok();
    if let (Some(nr), Some(first), Some(second)) =
        (register("orig_ax"), register("di"), register("si"))
    {
        layout.regs_syscall_nr = nr;
        layout.regs_first_arg = first;
        layout.regs_second_arg = second;
        layout.listen_syscall_nr = X86_64_LISTEN;
    }
}

fn add_tracepoint_offsets(layout: &mut KernelLayout, tracefs: &Path, missing: &mut Vec<String>) {
    let mut record = |hook: &Hook| {
        let (category, event) = tracepoint(hook);
        RecordFormat::read(tracefs, category, event).unwrap_or_else(|err| {
            missing.push(format!("{err:#}"));
            RecordFormat::default()
        })
    };
    let send = record(&catalog::SEND_RESET);
    let receive = record(&catalog::RECEIVE_RESET);
    let set_state = record(&catalog::SET_STATE);
    let listen = record(&catalog::LISTEN);
    let synack = record(&catalog::SYNACK);
    let retransmit = record(&catalog::RETRANSMIT);
    let kfree_skb = record(&catalog::DROPS);
    let offset = |format: &RecordFormat, field: &str| format.offset(field).unwrap_or(ABSENT);
    layout.tp_send_reset_skaddr = offset(&send, "skaddr");
    layout.tp_send_reset_skbaddr = offset(&send, "skbaddr");
    layout.tp_send_reset_reason = offset(&send, "reason");
    layout.tp_receive_reset_skaddr = offset(&receive, "skaddr");
    layout.tp_set_state_skaddr = offset(&set_state, "skaddr");
    layout.tp_set_state_oldstate = offset(&set_state, "oldstate");
    layout.tp_set_state_newstate = offset(&set_state, "newstate");
    layout.tp_set_state_protocol = offset(&set_state, "protocol");
    layout.tp_retransmit_state = offset(&retransmit, "state");
    layout.tp_retransmit_skaddr = offset(&retransmit, "skaddr");
    layout.tp_retransmit_sport = offset(&retransmit, "sport");
    layout.tp_retransmit_dport = offset(&retransmit, "dport");
    layout.tp_retransmit_family = offset(&retransmit, "family");
    layout.tp_retransmit_saddr = offset(&retransmit, "saddr");
    layout.tp_retransmit_daddr = offset(&retransmit, "daddr");
    layout.tp_retransmit_saddr_v6 = offset(&retransmit, "saddr_v6");
    layout.tp_retransmit_daddr_v6 = offset(&retransmit, "daddr_v6");
    layout.tp_set_state_sport = offset(&set_state, "sport");
    layout.tp_set_state_dport = offset(&set_state, "dport");
    layout.tp_set_state_family = offset(&set_state, "family");
    layout.tp_set_state_saddr = offset(&set_state, "saddr");
    layout.tp_set_state_daddr = offset(&set_state, "daddr");
    layout.tp_set_state_saddr_v6 = offset(&set_state, "saddr_v6");
    layout.tp_set_state_daddr_v6 = offset(&set_state, "daddr_v6");
    layout.tp_synack_skaddr = offset(&synack, "skaddr");
    layout.tp_synack_sport = offset(&synack, "sport");
    layout.tp_synack_dport = offset(&synack, "dport");
    layout.tp_synack_family = offset(&synack, "family");
    layout.tp_synack_saddr = offset(&synack, "saddr");
    layout.tp_synack_daddr = offset(&synack, "daddr");
    layout.tp_synack_saddr_v6 = offset(&synack, "saddr_v6");
    layout.tp_synack_daddr_v6 = offset(&synack, "daddr_v6");
    layout.tp_listen_fd = offset(&listen, "fd");
    layout.tp_listen_backlog = offset(&listen, "backlog");
    layout.tp_kfree_skb_skbaddr = offset(&kfree_skb, "skbaddr");
    layout.tp_kfree_skb_protocol = offset(&kfree_skb, "protocol");
    layout.tp_kfree_skb_reason = offset(&kfree_skb, "reason");
    layout.tp_kfree_skb_rx_sk = offset(&kfree_skb, "rx_sk");
}

/// The catalog declares these hooks as tracepoints.
fn tracepoint(hook: &Hook) -> (&'static str, &'static str) {
    hook.tracepoint()
        .unwrap_or_else(|| panic!("{} is not a tracepoint", hook.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::tracefs;

    #[test]
    fn running_kernel_resolves_every_offset() {
        let btf = KernelBtf::from_sys_fs().unwrap();
        let tracefs = tracefs::locate_or_mount().unwrap();
        let resolved = resolve(&btf, Some(&tracefs));
        assert!(resolved.missing.is_empty(), "{:?}", resolved.missing);
        let l = resolved.layout;
        assert_eq!(l.fn_reset_has_reason, 1, "6.18 passes a reset reason");
        assert_eq!(l.tp_btf_send_reset_has_reason, 1);
        assert_ne!(l.tp_send_reset_reason, ABSENT);
        assert_ne!(l.tp_kfree_skb_reason, ABSENT);
        assert_ne!(
            l.tp_kfree_skb_rx_sk, ABSENT,
            "6.18 names the receiving socket"
        );
        assert_eq!(l.tp_btf_kfree_skb_arity, 4);
        assert_ne!(l.drop_reason_not_specified, ABSENT);
        assert_ne!(l.drop_reason_queue_purge, ABSENT);
        assert_eq!(
            (l.regs_syscall_nr, l.regs_first_arg, l.regs_second_arg),
            (120, 112, 104),
            "x86-64's pt_regs: orig_ax, di, si"
        );
        assert_ne!(
            l.drop_reason_no_socket_quiet, ABSENT,
            "6.18 names the reason of each reset"
        );
        assert_eq!(l.skc_num, l.skc_dport + 2);
        // Built in here, so found without a module: `(net, sk, oldskb, hook)`.
        assert_eq!(l.nf_send_reset_skb_arg, 2);
        assert_eq!(l.nf_send_reset6_skb_arg, 2);
        for timeout_field in [
            l.sk_err,
            l.icsk_retransmits,
            l.icsk_user_timeout,
            l.tcp_total_retrans,
        ] {
            assert_ne!(timeout_field, ABSENT);
        }
    }
}
