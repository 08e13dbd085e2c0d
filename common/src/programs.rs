//! Names of the programs in the eBPF object. aya names a program after its function, so each
//! constant must match a function name in `agent-ebpf/src` (the agent's probe catalog test
//! checks both ways against the built object). Which kernel hook each one serves is the
//! catalog's business (`agent/src/probes/catalog.rs`).

pub const SEND_RESET_TRACEPOINT: &str = "tcp_send_reset";
pub const SEND_RESET_BTF: &str = "tcp_send_reset_btf";
pub const V4_SEND_RESET_FENTRY: &str = "tcp_v4_send_reset_fentry";
pub const V4_SEND_RESET_KPROBE: &str = "tcp_v4_send_reset_kprobe";
pub const V6_SEND_RESET_FENTRY: &str = "tcp_v6_send_reset_fentry";
pub const V6_SEND_RESET_KPROBE: &str = "tcp_v6_send_reset_kprobe";
pub const SEND_ACTIVE_RESET_FENTRY: &str = "tcp_send_active_reset_fentry";
pub const SEND_ACTIVE_RESET_KPROBE: &str = "tcp_send_active_reset_kprobe";
pub const RECEIVE_RESET_TRACEPOINT: &str = "tcp_receive_reset";
pub const RECEIVE_RESET_BTF: &str = "tcp_receive_reset_btf";
/// Records socket owners, transitions and lifetimes.
pub const SET_STATE_TRACEPOINT: &str = "inet_sock_set_state";
pub const SET_STATE_BTF: &str = "inet_sock_set_state_btf";
/// Records the backlog each listen() asked for.
pub const LISTEN_TRACEPOINT: &str = "sys_enter_listen";
/// Counted per listener.
pub const SYNACK_TRACEPOINT: &str = "tcp_retransmit_synack";
/// Counted by kind and per connection.
pub const RETRANSMIT_TRACEPOINT: &str = "tcp_retransmit_skb";
pub const CONN_REQUEST_FENTRY: &str = "tcp_conn_request_fentry";
pub const CONN_REQUEST_KPROBE: &str = "tcp_conn_request_kprobe";
pub const V4_SYN_RECV_SOCK_FENTRY: &str = "tcp_v4_syn_recv_sock_fentry";
pub const V4_SYN_RECV_SOCK_KPROBE: &str = "tcp_v4_syn_recv_sock_kprobe";
pub const V6_SYN_RECV_SOCK_FENTRY: &str = "tcp_v6_syn_recv_sock_fentry";
pub const V6_SYN_RECV_SOCK_KPROBE: &str = "tcp_v6_syn_recv_sock_kprobe";
/// Tail loss probes.
pub const LOSS_PROBE_FENTRY: &str = "tcp_send_loss_probe_fentry";
pub const LOSS_PROBE_KPROBE: &str = "tcp_send_loss_probe_kprobe";
/// TCP drops by reason.
pub const KFREE_SKB_TRACEPOINT: &str = "kfree_skb";
pub const KFREE_SKB_BTF: &str = "kfree_skb_btf";
/// Resets built by netfilter's REJECT (IPv4 and IPv6).
pub const NF_SEND_RESET_FENTRY: &str = "nf_send_reset_fentry";
pub const NF_SEND_RESET_KPROBE: &str = "nf_send_reset_kprobe";
pub const NF_SEND_RESET6_FENTRY: &str = "nf_send_reset6_fentry";
pub const NF_SEND_RESET6_KPROBE: &str = "nf_send_reset6_kprobe";
