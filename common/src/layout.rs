//! Kernel struct offsets and tracepoint field offsets, resolved by user space.
//!
//! Struct layouts differ between kernel builds and tracepoint layouts between versions (for
//! example `tcp:tcp_send_reset` gained `reason` and lost its split address fields in 6.10), and
//! Rust eBPF programs get no CO-RE relocations. User space reads the running kernel's BTF and
//! tracefs formats, fills this table and writes it into the programs' read-only data before load.

/// Marks an offset that the running kernel does not have.
pub const ABSENT: u32 = u32::MAX;

/// Byte offsets into kernel structs and tracepoint records. Every field is a `u32` so that the
/// struct has no padding and the two sides agree on its bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    // struct sock_common (shared by full, request and timewait sockets)
    pub skc_daddr: u32,
    pub skc_rcv_saddr: u32,
    pub skc_dport: u32,
    pub skc_num: u32,
    pub skc_family: u32,
    pub skc_state: u32,
    pub skc_v6_daddr: u32,
    pub skc_v6_rcv_saddr: u32,
    pub skc_net: u32,
    /// `struct net` → `ns.inum`: the network namespace's inode number.
    pub net_ns_inum: u32,
    // struct sock
    pub sk_flags: u32,
    pub sk_lingertime: u32,
    pub sk_ack_backlog: u32,
    pub sk_max_ack_backlog: u32,
    /// `inet_connection_sock.icsk_accept_queue.qlen`: the listener's half-open requests.
    pub icsk_accept_queue_qlen: u32,
    /// `sock.sk_protocol`: IPPROTO_TCP for TCP sockets (a BTF tracepoint on
    /// `inet_sock_set_state` gets no record with the protocol in it).
    pub sk_protocol: u32,
    /// `sock.sk_err`: the error a timed-out connection leaves for its application.
    pub sk_err: u32,
    /// `inet_connection_sock.icsk_retransmits`: consecutive retransmission timeouts (a byte).
    pub icsk_retransmits: u32,
    /// `inet_connection_sock.icsk_user_timeout`: TCP_USER_TIMEOUT in ms.
    pub icsk_user_timeout: u32,
    // struct inet_sock: the local port survives here after close releases `skc_num`.
    pub inet_sport: u32,
    // struct tcp_sock
    pub tcp_rcv_nxt: u32,
    pub tcp_copied_seq: u32,
    /// `tcp_sock.srtt_us`: the smoothed RTT in µs, shifted left by 3.
    pub tcp_srtt_us: u32,
    pub tcp_total_retrans: u32,
    // struct inet_timewait_sock
    pub tw_substate: u32,
    // struct sk_buff
    pub skb_head: u32,
    pub skb_network_header: u32,
    pub skb_transport_header: u32,
    /// `sk_buff.protocol`: the EtherType, big-endian.
    pub skb_protocol: u32,
    /// `sk_buff.sk`: the sending socket of an outgoing segment.
    pub skb_sk: u32,
    /// `sk_buff.dev` and `net_device.nd_net.net`: the namespace of a segment without a socket.
    pub skb_dev: u32,
    pub dev_nd_net: u32,
    // enum sock_flags: bit numbers within sk_flags
    pub sock_flag_dead: u32,
    pub sock_flag_linger: u32,
    // function arguments: positions, for functions whose parameters changed between kernels
    /// Which argument of `nf_send_reset` is the rejected segment (`oldskb`): 2 on the kernels
    /// tcpwhy supports (`net, sk, oldskb, hook`), 1 on older ones (`net, oldskb, hook`);
    /// [`ABSENT`] while its module (`nf_reject_ipv4`) is not loaded.
    pub nf_send_reset_skb_arg: u32,
    /// The same for `nf_send_reset6`.
    pub nf_send_reset6_skb_arg: u32,
    // tracepoint records (offsets from the start of the record, as tracefs reports them)
    pub tp_send_reset_skaddr: u32,
    pub tp_send_reset_skbaddr: u32,
    pub tp_send_reset_reason: u32,
    pub tp_receive_reset_skaddr: u32,
    pub tp_set_state_skaddr: u32,
    pub tp_set_state_oldstate: u32,
    pub tp_set_state_newstate: u32,
    pub tp_set_state_protocol: u32,
    pub tp_retransmit_state: u32,
    pub tp_retransmit_skaddr: u32,
    pub tp_retransmit_sport: u32,
    pub tp_retransmit_dport: u32,
    pub tp_retransmit_family: u32,
    pub tp_retransmit_saddr: u32,
    pub tp_retransmit_daddr: u32,
    pub tp_retransmit_saddr_v6: u32,
    pub tp_retransmit_daddr_v6: u32,
    pub tp_set_state_sport: u32,
    pub tp_set_state_dport: u32,
    pub tp_set_state_family: u32,
    pub tp_set_state_saddr: u32,
    pub tp_set_state_daddr: u32,
    pub tp_set_state_saddr_v6: u32,
    pub tp_set_state_daddr_v6: u32,
    pub tp_synack_skaddr: u32,
    pub tp_synack_sport: u32,
    pub tp_synack_dport: u32,
    pub tp_synack_family: u32,
    pub tp_synack_saddr: u32,
    pub tp_synack_daddr: u32,
    pub tp_synack_saddr_v6: u32,
    pub tp_synack_daddr_v6: u32,
    pub tp_listen_fd: u32,
    pub tp_listen_backlog: u32,
    pub tp_kfree_skb_skbaddr: u32,
    pub tp_kfree_skb_protocol: u32,
    /// Absent before Linux 5.17: such a kernel frees packets without saying why.
    pub tp_kfree_skb_reason: u32,
    /// The socket the segment was for, where the kernel found one (Linux ≥ 6.12).
    pub tp_kfree_skb_rx_sk: u32,
    /// Arguments the BTF flavour of `kfree_skb` passes: `skb, location[, reason[, rx_sk]]`.
    pub tp_btf_kfree_skb_arity: u32,
    /// `SKB_DROP_REASON_NOT_SPECIFIED`: it and the values before it (`SKB_NOT_DROPPED_YET`,
    /// `SKB_CONSUMED`) say nothing about why, and are not counted.
    pub drop_reason_not_specified: u32,
    /// `SKB_DROP_REASON_QUEUE_PURGE`: a closing socket freeing the segments still queued on it
    /// (its unread FIN, for one). Housekeeping on nearly every connection, not a loss, so not
    /// counted.
    pub drop_reason_queue_purge: u32,
    /// `SKB_DROP_REASON_NO_SOCKET` where it is not counted (else absent): on kernels whose
    /// `tcp_send_reset` names its reason, the reset sent for each such segment is seen and
    /// explained, and counting the drop too would report every refused connect twice.
    pub drop_reason_no_socket_quiet: u32,
    /// Non-zero when `tcp_v4_send_reset`, `tcp_v6_send_reset` and `tcp_send_active_reset` take
    /// an `enum sk_rst_reason` as their last argument (Linux ≥ 6.10).
    pub fn_reset_has_reason: u32,
    /// Non-zero when the BTF flavour of `tcp_send_reset` passes the reason (Linux ≥ 6.10).
    pub tp_btf_send_reset_has_reason: u32,
    // struct pt_regs: the registers of the system call a program runs inside, where it can read
    // them (`bpf_task_pt_regs`, Linux ≥ 5.15) and tcpwhy knows the architecture's calling
    // convention (x86-64). Absent elsewhere: listen() is then watched by its syscall tracepoint.
    /// The system call's number (`orig_ax`).
    pub regs_syscall_nr: u32,
    /// Its first and second arguments (`di`, `si`).
    pub regs_first_arg: u32,
    pub regs_second_arg: u32,
    /// listen()'s system call number on this architecture.
    pub listen_syscall_nr: u32,
}

impl KernelLayout {
    /// A layout in which nothing is known: every program treats such fields as unreadable.
    pub const UNKNOWN: KernelLayout = KernelLayout {
        skc_daddr: ABSENT,
        skc_rcv_saddr: ABSENT,
        skc_dport: ABSENT,
        skc_num: ABSENT,
        skc_family: ABSENT,
        skc_state: ABSENT,
        skc_v6_daddr: ABSENT,
        skc_v6_rcv_saddr: ABSENT,
        skc_net: ABSENT,
        net_ns_inum: ABSENT,
        sk_flags: ABSENT,
        sk_lingertime: ABSENT,
        sk_ack_backlog: ABSENT,
        sk_max_ack_backlog: ABSENT,
        icsk_accept_queue_qlen: ABSENT,
        sk_protocol: ABSENT,
        sk_err: ABSENT,
        icsk_retransmits: ABSENT,
        icsk_user_timeout: ABSENT,
        inet_sport: ABSENT,
        tcp_rcv_nxt: ABSENT,
        tcp_copied_seq: ABSENT,
        tcp_srtt_us: ABSENT,
        tcp_total_retrans: ABSENT,
        tw_substate: ABSENT,
        skb_head: ABSENT,
        skb_network_header: ABSENT,
        skb_transport_header: ABSENT,
        skb_protocol: ABSENT,
        skb_sk: ABSENT,
        skb_dev: ABSENT,
        dev_nd_net: ABSENT,
        sock_flag_dead: ABSENT,
        sock_flag_linger: ABSENT,
        nf_send_reset_skb_arg: ABSENT,
        nf_send_reset6_skb_arg: ABSENT,
        tp_send_reset_skaddr: ABSENT,
        tp_send_reset_skbaddr: ABSENT,
        tp_send_reset_reason: ABSENT,
        tp_receive_reset_skaddr: ABSENT,
        tp_set_state_skaddr: ABSENT,
        tp_set_state_oldstate: ABSENT,
        tp_set_state_newstate: ABSENT,
        tp_set_state_protocol: ABSENT,
        tp_retransmit_state: ABSENT,
        tp_retransmit_skaddr: ABSENT,
        tp_retransmit_sport: ABSENT,
        tp_retransmit_dport: ABSENT,
        tp_retransmit_family: ABSENT,
        tp_retransmit_saddr: ABSENT,
        tp_retransmit_daddr: ABSENT,
        tp_retransmit_saddr_v6: ABSENT,
        tp_retransmit_daddr_v6: ABSENT,
        tp_set_state_sport: ABSENT,
        tp_set_state_dport: ABSENT,
        tp_set_state_family: ABSENT,
        tp_set_state_saddr: ABSENT,
        tp_set_state_daddr: ABSENT,
        tp_set_state_saddr_v6: ABSENT,
        tp_set_state_daddr_v6: ABSENT,
        tp_synack_skaddr: ABSENT,
        tp_synack_sport: ABSENT,
        tp_synack_dport: ABSENT,
        tp_synack_family: ABSENT,
        tp_synack_saddr: ABSENT,
        tp_synack_daddr: ABSENT,
        tp_synack_saddr_v6: ABSENT,
        tp_synack_daddr_v6: ABSENT,
        tp_listen_fd: ABSENT,
        tp_listen_backlog: ABSENT,
        tp_kfree_skb_skbaddr: ABSENT,
        tp_kfree_skb_protocol: ABSENT,
        tp_kfree_skb_reason: ABSENT,
        tp_kfree_skb_rx_sk: ABSENT,
        tp_btf_kfree_skb_arity: 0,
        drop_reason_not_specified: ABSENT,
        drop_reason_queue_purge: ABSENT,
        drop_reason_no_socket_quiet: ABSENT,
        fn_reset_has_reason: 0,
        tp_btf_send_reset_has_reason: 0,
        regs_syscall_nr: ABSENT,
        regs_first_arg: ABSENT,
        regs_second_arg: ABSENT,
        listen_syscall_nr: ABSENT,
    };
}

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, only `u32` fields, so no padding and every bit pattern is valid.
unsafe impl aya::Pod for KernelLayout {}
