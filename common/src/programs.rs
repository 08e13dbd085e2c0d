//! Names of the programs in the eBPF object. aya names a program after its function, so each
//! constant must match a function name in `agent-ebpf/src`.

/// `tcp:tcp_send_reset`, classic tracepoint.
pub const SEND_RESET_TRACEPOINT: &str = "tcp_send_reset";
/// `tcp_send_reset`, BTF tracepoint.
pub const SEND_RESET_BTF: &str = "tcp_send_reset_btf";
/// Function probes on the reset senders: (kernel function, fentry program, kprobe program).
pub const RESET_FUNCTIONS: [(&str, &str, &str); 3] = [
    (
        "tcp_v4_send_reset",
        "tcp_v4_send_reset_fentry",
        "tcp_v4_send_reset_kprobe",
    ),
    (
        "tcp_v6_send_reset",
        "tcp_v6_send_reset_fentry",
        "tcp_v6_send_reset_kprobe",
    ),
    (
        "tcp_send_active_reset",
        "tcp_send_active_reset_fentry",
        "tcp_send_active_reset_kprobe",
    ),
];
/// `tcp:tcp_receive_reset`, classic tracepoint.
pub const RECEIVE_RESET_TRACEPOINT: &str = "tcp_receive_reset";
/// `tcp_receive_reset`, BTF tracepoint.
pub const RECEIVE_RESET_BTF: &str = "tcp_receive_reset_btf";
/// `sock:inet_sock_set_state`, which records socket owners.
pub const SET_STATE_TRACEPOINT: &str = "inet_sock_set_state";
/// `syscalls:sys_enter_listen`, which records the backlog each listen() asked for.
pub const LISTEN_TRACEPOINT: &str = "sys_enter_listen";
/// `tcp:tcp_retransmit_synack`, counted per listener.
pub const SYNACK_TRACEPOINT: &str = "tcp_retransmit_synack";
/// Function probes on the listen-queue paths: (kernel function, fentry program, kprobe program).
pub const QUEUE_FUNCTIONS: [(&str, &str, &str); 3] = [
    (
        "tcp_conn_request",
        "tcp_conn_request_fentry",
        "tcp_conn_request_kprobe",
    ),
    (
        "tcp_v4_syn_recv_sock",
        "tcp_v4_syn_recv_sock_fentry",
        "tcp_v4_syn_recv_sock_kprobe",
    ),
    (
        "tcp_v6_syn_recv_sock",
        "tcp_v6_syn_recv_sock_fentry",
        "tcp_v6_syn_recv_sock_kprobe",
    ),
];
/// `tcp:tcp_retransmit_skb`, counted by kind.
pub const RETRANSMIT_TRACEPOINT: &str = "tcp_retransmit_skb";
/// Function probe on `tcp_send_loss_probe` (tail loss probes): (function, fentry, kprobe).
pub const TLP_FUNCTION: [(&str, &str, &str); 1] = [(
    "tcp_send_loss_probe",
    "tcp_send_loss_probe_fentry",
    "tcp_send_loss_probe_kprobe",
)];
