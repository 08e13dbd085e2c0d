//! TCP drops with the kernel's reason, reproduced inside network namespaces the tests create,
//! with the agent running in the host namespace. Each count is checked against what the kernel
//! counted by another way: the SYNs the clients' sockets sent, the namespace's ListenOverflows.

mod support;

use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
    os::fd::AsRawFd,
    thread::sleep,
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use support::{
    Agent, Report,
    daemon::{Daemon, metric},
    netns::TestNetns,
    our_pid, require_bpf,
    scenarios::{self, connect_many, listen},
};

/// Long enough for the first SYN (and SYN-ACK) retransmit at 1 s, with a margin for a loaded
/// machine or an emulated guest.
const HOLD: Duration = Duration::from_millis(2500);

/// Between the first SYN retransmit (1 s) and the second (3 s), with a margin either side.
const ONE_RETRANSMIT: Duration = Duration::from_millis(1800);

/// The SYNs a connecting socket has sent: the first and its retransmits (TCP_INFO). An nftables
/// `counter` would say the same, but needs a module of its own before Linux 5.13.
fn syns_sent(socket: &Socket) -> u64 {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid socket, and a buffer of the length given.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    1 + u64::from(info.tcpi_total_retrans)
}

/// A TcpExt counter of the namespace, as /proc/net/netstat shows it from inside.
fn tcp_ext_counter(ns: &TestNetns, name: &str) -> u64 {
    let output = ns
        .exec()
        .args(["cat", "/proc/net/netstat"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no TcpExt {name} in:\n{text}"))
}

/// Whether this kernel's drops are counted: from Linux 5.17, which gave `skb:kfree_skb` its
/// reason. Before, the probe must stay detached and say why.
fn drops_counted(report: &Report) -> bool {
    let probe = report.probe("skb:kfree_skb");
    if probe["attached"] == true {
        return true;
    }
    let release = report.json["kernel"]["release"].as_str().unwrap();
    let mut numbers = release
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    assert!(version < (5, 17), "Linux {release}: {probe}");
    assert!(
        probe["error"].as_str().unwrap().contains("Linux < 5.17"),
        "{probe}"
    );
    false
}

/// The running kernel's record format of a tracepoint (tracefs is mounted by the agent).
fn tracepoint_format(category: &str, event: &str) -> String {
    std::fs::read_to_string(format!(
        "/sys/kernel/tracing/events/{category}/{event}/format"
    ))
    .expect("the agent mounts tracefs")
}

fn kfree_skb_format() -> String {
    tracepoint_format("skb", "kfree_skb")
}

/// Whether the running kernel has a drop reason of this name (its tracepoint lists them).
fn kernel_names_reason(reason: &str) -> bool {
    kfree_skb_format().contains(&format!("\"{reason}\""))
}

/// SYNs to `port` in a namespace of their own, which an nftables rule there drops: the
/// namespace and how many SYNs the clients sent.
fn syns_into_a_drop_rule(port: u16) -> (TestNetns, u64) {
    let ns = TestNetns::new();
    ns.nft("add table inet guard");
    ns.nft("add chain inet guard in { type filter hook input priority 0 ; }");
    ns.nft(&format!("add rule inet guard in tcp dport {port} drop"));
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let clients = ns.enter(|| connect_many(target, 3, None));
    sleep(ONE_RETRANSMIT);
    let sent = clients.iter().map(syns_sent).sum();
    // Closing a connect still in SYN_SENT sends nothing more.
    drop(clients);
    (ns, sent)
}

#[test]
fn a_firewall_rule_drop_is_counted_at_the_port_it_guards() {
    if !require_bpf() {
        return;
    }
    let agent = Agent::start(&[]);
    let (ns, dropped) = syns_into_a_drop_rule(7701);
    let report = agent.finish();
    let target = "127.0.0.1:7701";

    assert!(dropped >= 3, "the clients sent only {dropped} SYNs");
    if !drops_counted(&report) {
        return;
    }
    let finding = report.one_in("drop", "netfilter_drop", target, ns.inode());
    assert_eq!(finding["count"], dropped, "{finding:#}");
    assert_eq!(finding["kernel_reason"], "NETFILTER_DROP");
    assert_eq!(finding["evidence"]["hook"], "skb:kfree_skb");
    // Nothing listens: no socket is involved, and no process.
    assert_eq!(finding["evidence"]["listener"], false);
    assert!(finding["process"].is_null(), "{finding:#}");
    let explanation = finding["explanation"].as_str().unwrap();
    assert!(explanation.contains("a netfilter rule"), "{explanation}");
    let advice = finding["advice"].to_string();
    assert!(advice.contains("nft list ruleset"), "{advice}");
}

/// Three clients whose listener's SYN-ACKs an nftables rule drops on the way back: each client's
/// ephemeral port is where the kernel counts, and the finding names the service they all tried.
#[test]
fn a_clients_drops_on_connections_to_one_service_are_one_finding() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let service: SocketAddr = "127.0.0.1:7703".parse().unwrap();
    let _listener = ns.enter(|| listen(service, 16));
    ns.drop_tcp_from(service.port());
    let agent = Agent::start(&[]);
    let clients = ns.enter(|| connect_many(service, 3, None));
    sleep(ONE_RETRANSMIT);
    let report = agent.finish();
    drop(clients);
    if !drops_counted(&report) {
        return;
    }

    let found: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| {
            f["kind"] == "drop"
                && f["remote"] == service.to_string()
                && support::in_namespace(f, ns.inode())
        })
        .collect();
    assert_eq!(found.len(), 1, "{}", report.touching(&service.to_string()));
    let finding = found[0];
    assert_eq!(finding["cause"], "netfilter_drop", "{finding:#}");
    assert_eq!(
        finding["evidence"]["distinct_local_endpoints"], 3,
        "{finding:#}"
    );
    // A SYN-ACK for each client, and its retransmits.
    assert!(finding["count"].as_u64().unwrap() >= 3, "{finding:#}");
    let explanation = finding["explanation"].as_str().unwrap();
    assert!(
        explanation.contains(&format!("of connections to {service} from")),
        "{explanation}"
    );
    assert!(
        explanation.contains("and 2 more local ports"),
        "{explanation}"
    );
}

/// A client whose final ACK is held back (an nftables rule on its port) while two others fill
/// the listener's accept queue (backlog 1 holds 2); then the held client's data arrives at the
/// full queue, and so do its replies to the listener's SYN-ACK retransmits.
#[test]
fn a_final_ack_into_a_full_accept_queue_is_a_listen_overflow_drop_at_the_listener() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    ns.sysctl("net.ipv4.tcp_abort_on_overflow", "0");
    let server: SocketAddr = "127.0.0.1:7702".parse().unwrap();
    let held_port = 40702;
    ns.nft("add table inet hold");
    ns.nft("add chain inet hold out { type filter hook output priority 0 ; }");
    ns.nft(&format!(
        "add rule inet hold out tcp sport {held_port} tcp flags == ack drop"
    ));

    let agent = Agent::start(&[]);
    let (listener, held, others) = ns.enter(|| {
        let listener = listen(server, 1);
        let held = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        held.bind(
            &format!("127.0.0.1:{held_port}")
                .parse::<SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        held.connect(&server.into()).unwrap();
        let others: Vec<TcpStream> = (0..2)
            .map(|_| TcpStream::connect(server).unwrap())
            .collect();
        (listener, held, others)
    });
    sleep(Duration::from_millis(300));
    ns.nft("delete table inet hold");
    let _ = TcpStream::from(held.try_clone().unwrap()).write_all(b"hello");
    sleep(HOLD);
    // An abortive close: the RST removes the half-open request, and nothing more reaches the
    // full queue, so the namespace's counter is final.
    held.set_linger(Some(Duration::ZERO)).unwrap();
    drop(held);
    sleep(Duration::from_millis(200));
    let overflows = tcp_ext_counter(&ns, "ListenOverflows");
    let report = agent.finish();
    drop((listener, others));

    assert!(overflows >= 1, "the queue never overflowed");
    if !drops_counted(&report) {
        return;
    }
    if !kernel_names_reason("TCP_LISTEN_OVERFLOW") {
        // Older kernels free these segments without a reason, which is not counted.
        assert!(
            report
                .find("drop", "tcp_listen_overflow", &server.to_string())
                .is_empty()
        );
        return;
    }
    let finding = report.one_in(
        "drop",
        "tcp_listen_overflow",
        &server.to_string(),
        ns.inode(),
    );
    // Each arrival at the full queue is one overflow and one dropped segment.
    assert_eq!(finding["count"], overflows, "{finding:#}");
    assert_eq!(finding["kernel_reason"], "TCP_LISTEN_OVERFLOW");
    assert_eq!(finding["remote"], format!("127.0.0.1:{held_port}"));
    assert_eq!(finding["evidence"]["listener"], true);
    assert_eq!(finding["evidence"]["socket_state"], "LISTEN");
    assert_eq!(finding["process"]["pid"], our_pid(), "{finding:#}");
    let explanation = finding["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("of the listener 127.0.0.1:7702"),
        "{explanation}"
    );
}

/// Whether the running kernel's `tcp:tcp_send_reset` names each reset's reason (Linux ≥ 6.10),
/// and so sees the resets sent without a socket.
fn send_reset_names_reason() -> bool {
    tracepoint_format("tcp", "tcp_send_reset").contains(" reason;")
}

#[test]
fn closing_connections_is_not_a_drop_and_a_refused_connect_is_reported_once() {
    if !require_bpf() {
        return;
    }
    const CLOSED: u32 = 10;
    const REFUSED: u64 = 5;
    let ns = TestNetns::new();
    let agent = Agent::start(&[]);
    let service: SocketAddr = "127.0.0.1:7703".parse().unwrap();
    let nothing: SocketAddr = "127.0.0.1:7704".parse().unwrap();
    ns.enter(|| {
        let listener = listen(service, 16);
        for _ in 0..CLOSED {
            // The server closes first, so the client closes with the server's FIN still
            // queued: the kernel frees it as a QUEUE_PURGE.
            let client = TcpStream::connect(service).unwrap();
            let (accepted, _) = listener.accept().unwrap();
            drop(accepted);
            sleep(Duration::from_millis(5));
            drop(client);
        }
        for _ in 0..REFUSED {
            scenarios::refused_connect("127.0.0.1".parse().unwrap(), nothing);
        }
    });
    sleep(Duration::from_millis(300));
    let report = agent.finish();
    if !drops_counted(&report) {
        return;
    }

    let drops: Vec<&serde_json::Value> = report
        .findings()
        .iter()
        .filter(|f| f["kind"] == "drop" && support::in_namespace(f, ns.inode()))
        .collect();
    let named = |cause: &str| drops.iter().filter(|f| f["cause"] == cause).count();
    assert_eq!(named("queue_purge"), 0, "{drops:#?}");
    if send_reset_names_reason() {
        // The reset sent for each refused SYN is seen, and says all the drop would.
        let refused = report.one_in("rst_sent", "no_listener", &nothing.to_string(), ns.inode());
        assert_eq!(refused["count"], REFUSED, "{refused:#}");
        assert_eq!(named("no_socket"), 0, "{drops:#?}");
    } else {
        // A reason-blind tracepoint misses those resets: the drop may be all there is.
        let no_socket = report.one_in("drop", "no_socket", &nothing.to_string(), ns.inode());
        assert_eq!(no_socket["count"], REFUSED, "{no_socket:#}");
    }
    // Only the refused connects were dropped, nothing of the closed connections.
    assert_eq!(drops.len(), named("no_socket"), "{drops:#?}");
}

#[test]
fn the_daemon_counts_drops_by_reason_and_streams_them() {
    if !require_bpf() {
        return;
    }
    let daemon = Daemon::start(&[]);
    if !kfree_skb_format().contains(" reason;") {
        return; // before 5.17: the diagnose tests check that the probe says why it is absent
    }
    let series = [("reason", "netfilter_drop")];
    let before = metric(&daemon.scrape(), "tcpwhy_drops_total", &series).unwrap_or(0.0);
    let (ns, dropped) = syns_into_a_drop_rule(7703);
    // The daemon folds the kernel's totals and streams drop findings every second.
    sleep(Duration::from_millis(2500));
    let after = metric(&daemon.scrape(), "tcpwhy_drops_total", &series).unwrap_or(0.0);
    // Other tests may drop segments at the same time: at least ours.
    assert!(
        after - before >= dropped as f64,
        "{before} -> {after}, {dropped} dropped"
    );

    let streamed: Vec<serde_json::Value> = daemon
        .events()
        .into_iter()
        .filter(|e| {
            e["kind"] == "drop"
                && e["cause"] == "netfilter_drop"
                && e["local"] == "127.0.0.1:7703"
                && e["evidence"]["netns"] == ns.inode()
        })
        .collect();
    // Each event is the growth since the one before: together, every drop once.
    let total: u64 = streamed.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(total, dropped, "{streamed:#?}\n{}", daemon.log());
}
