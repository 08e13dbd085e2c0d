//! Retransmits and connection states reproduced for real inside network namespaces the tests
//! create (nftables drops packets there; the port range is narrowed there), with the agent in
//! the host namespace.

mod support;

use std::{
    io::Write,
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    thread::sleep,
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use support::{Agent, netns::TestNetns, our_pid, require_bpf};

/// A connect() that gives up after one SYN retransmit (about 3 s) instead of tcp_syn_retries.
fn connect_with_one_retry(to: SocketAddr) -> (SocketAddr, std::io::Error) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    let one: libc::c_int = 1;
    // SAFETY: valid socket and option pointer.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SYNCNT,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let local = socket.local_addr().unwrap().as_socket().unwrap();
    let err = socket.connect(&to.into()).expect_err("nothing answers");
    (local, err)
}

#[test]
fn a_silent_destination_times_out_and_a_closed_port_is_refused() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    ns.drop_tcp_to(9999);
    let agent = Agent::start(&[]);
    let silent: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let closed: SocketAddr = "127.0.0.1:9998".parse().unwrap();
    let (timed_out_from, err) = ns.enter(|| connect_with_one_retry(silent));
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let (refused_from, err) = ns.enter(|| connect_with_one_retry(closed));
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    let report = agent.finish();
    let inode = ns.inode();

    let timeouts: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f["cause"] == "connect_timeout" && f["evidence"]["namespace"] == inode)
        .collect();
    assert_eq!(timeouts.len(), 1, "{timeouts:#?}");
    let timeout = timeouts[0];
    assert_eq!(timeout["kind"], "state");
    assert_eq!(timeout["remote"], silent.to_string());
    assert_eq!(timeout["local"], timed_out_from.to_string());
    assert_eq!(timeout["count"], 1);
    assert_eq!(timeout["process"]["pid"], our_pid());
    assert_eq!(timeout["evidence"]["refused"], 0);
    assert!(
        timeout["evidence"]["waited_max_ms"].as_u64().unwrap() >= 2500,
        "{timeout:#}"
    );

    let syns: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f["cause"] == "syn_retransmits" && f["evidence"]["namespace"] == inode)
        .collect();
    assert_eq!(syns.len(), 1, "{syns:#?}");
    assert_eq!(syns[0]["kind"], "retransmit");
    assert_eq!(syns[0]["remote"], silent.to_string());
    assert!(syns[0]["count"].as_u64().unwrap() >= 1);
    assert_eq!(syns[0]["process"]["pid"], our_pid());

    // The refused connect is a reset received, not a timeout.
    let refused = report.one_in(
        "rst_received",
        "connection_refused",
        &refused_from.to_string(),
        inode,
    );
    assert_eq!(refused["remote"], closed.to_string());
    assert!(
        !report
            .findings()
            .iter()
            .any(|f| f["cause"] == "connect_timeout" && f["remote"] == closed.to_string())
    );
}

#[test]
fn dropped_segments_are_data_retransmits() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let server: SocketAddr = "127.0.0.1:7601".parse().unwrap();
    let (_listener, mut client, _accepted) = ns.enter(|| {
        let listener = TcpListener::bind(server).unwrap();
        let client = TcpStream::connect(server).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (listener, client, accepted)
    });
    let agent = Agent::start(&[]);
    // From now on nothing reaches the server: the client's data is retransmitted on timeout.
    ns.drop_tcp_to(server.port());
    client.write_all(b"is anyone there?").unwrap();
    sleep(Duration::from_millis(2500));
    let report = agent.finish();

    let data: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f["cause"] == "data_retransmits" && f["evidence"]["namespace"] == ns.inode())
        .collect();
    assert_eq!(data.len(), 1, "{data:#?}");
    let finding = data[0];
    assert_eq!(finding["kind"], "retransmit");
    assert_eq!(finding["remote"], server.to_string());
    assert_eq!(finding["local"], client.local_addr().unwrap().to_string());
    // RTO 200 ms, doubling: 0.2, 0.6, 1.4 s... at least two within 2.5 s.
    assert!(finding["count"].as_u64().unwrap() >= 2, "{finding:#}");
    assert_eq!(finding["process"]["pid"], our_pid());
    assert!(
        finding["explanation"]
            .as_str()
            .unwrap()
            .contains("tcp_retries2=")
    );
}

#[test]
fn a_server_whose_replies_are_lost_to_many_clients_is_one_finding() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let server: SocketAddr = "127.0.0.1:7602".parse().unwrap();
    let (_listener, clients, mut accepted) = ns.enter(|| {
        let listener = TcpListener::bind(server).unwrap();
        let clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(server).unwrap())
            .collect();
        let accepted: Vec<TcpStream> = (0..3).map(|_| listener.accept().unwrap().0).collect();
        (listener, clients, accepted)
    });
    let agent = Agent::start(&[]);
    // Nothing the server sends reaches its clients: its replies are retransmitted on timeout.
    ns.drop_tcp_from(server.port());
    for stream in &mut accepted {
        stream.write_all(b"your reply").unwrap();
    }
    sleep(Duration::from_millis(1500));
    let report = agent.finish();

    let data: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f["cause"] == "data_retransmits" && f["evidence"]["namespace"] == ns.inode())
        .collect();
    // Three clients on three ephemeral ports, one service: one finding, named by the service.
    assert_eq!(data.len(), 1, "{data:#?}");
    let finding = data[0];
    assert_eq!(finding["local"], server.to_string());
    assert_eq!(finding["evidence"]["connections"], 3);
    assert!(finding["count"].as_u64().unwrap() >= 3, "{finding:#}");
    let ports: Vec<String> = clients
        .iter()
        .map(|c| c.local_addr().unwrap().to_string())
        .collect();
    assert!(
        ports.contains(&finding["remote"].as_str().unwrap().to_string()),
        "{finding:#}"
    );
    let story = finding["explanation"].as_str().unwrap();
    assert!(
        story.contains("from 127.0.0.1:7602 to 3 clients"),
        "{story}"
    );
}

#[test]
fn a_process_that_never_closes_leaks_close_wait_and_its_peers_wait_in_fin_wait2() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let server: SocketAddr = "127.0.0.1:7602".parse().unwrap();
    let agent = Agent::start(&[]);
    let _held = ns.enter(|| {
        let listener = TcpListener::bind(server).unwrap();
        let pairs: Vec<(TcpStream, TcpStream)> = (0..3)
            .map(|_| {
                let client = TcpStream::connect(server).unwrap();
                let (accepted, _) = listener.accept().unwrap();
                // The client is done writing; the server never closes its side.
                client.shutdown(Shutdown::Write).unwrap();
                (client, accepted)
            })
            .collect();
        (listener, pairs)
    });
    sleep(Duration::from_millis(5500)); // past the FIN_WAIT2 threshold (5 s)
    let report = agent.finish();
    let inode = ns.inode();

    let leaks: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f["cause"] == "close_wait_leak" && f["evidence"]["namespace"] == inode)
        .collect();
    assert_eq!(leaks.len(), 1, "{leaks:#?}");
    assert_eq!(leaks[0]["kind"], "state");
    assert_eq!(leaks[0]["count"], 3);
    assert_eq!(leaks[0]["local"], server.to_string());
    assert_eq!(leaks[0]["process"]["pid"], our_pid());
    assert_eq!(leaks[0]["evidence"]["oldest_known"], true);
    assert!(leaks[0]["evidence"]["oldest_ms"].as_u64().unwrap() >= 5000);

    let waiting: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f["cause"] == "fin_wait2_stuck" && f["evidence"]["namespace"] == inode)
        .collect();
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    assert_eq!(waiting[0]["count"], 3);
    assert_eq!(waiting[0]["remote"], server.to_string());
    assert_eq!(waiting[0]["evidence"]["orphans"], 0);
    assert_eq!(waiting[0]["evidence"]["oldest_known"], true);
    assert!(waiting[0]["evidence"]["oldest_ms"].as_u64().unwrap() >= 5000);
    assert_eq!(waiting[0]["process"]["pid"], our_pid());
}

#[test]
fn many_short_connections_build_up_time_wait() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    ns.sysctl("net.ipv4.ip_local_port_range", "40000 40099");
    // With reuse allowed (2, the default, allows it on loopback), a slow run lets connect() take
    // the port of a TIME_WAIT socket older than a second, and fewer than 30 remain.
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let server: SocketAddr = "127.0.0.1:7603".parse().unwrap();
    let agent = Agent::start(&[]);
    ns.enter(|| {
        let listener = TcpListener::bind(server).unwrap();
        for _ in 0..30 {
            let client = TcpStream::connect(server).unwrap();
            let (mut accepted, _) = listener.accept().unwrap();
            drop(client); // the client closes first and keeps the TIME_WAIT
            // Close the server side only once the client's FIN has arrived.
            let mut rest = Vec::new();
            std::io::Read::read_to_end(&mut accepted, &mut rest).unwrap();
            drop(accepted);
        }
    });
    sleep(Duration::from_millis(300));
    let report = agent.finish();

    let pressure: Vec<_> = report
        .findings()
        .iter()
        .filter(|f| f["cause"] == "time_wait_pressure" && f["evidence"]["namespace"] == ns.inode())
        .collect();
    assert_eq!(pressure.len(), 1, "{pressure:#?}");
    let finding = pressure[0];
    assert_eq!(finding["count"], 30);
    assert_eq!(finding["remote"], server.to_string());
    assert_eq!(finding["evidence"]["share_percent"], 30);
    assert_eq!(
        finding["evidence"]["ip_local_port_range"],
        serde_json::json!([40000, 40099])
    );
    // The whole window's transitions are summarised too.
    let transitions = report.json["connections"]["transitions"]
        .as_array()
        .unwrap();
    assert!(transitions.iter().any(|t| t["from"] == "ESTABLISHED"
        && t["to"] == "FIN_WAIT1"
        && t["count"].as_u64().unwrap() >= 30));
}

#[test]
fn both_ends_of_a_connection_count_its_lifetime() {
    if !require_bpf() {
        return;
    }
    const CONNECTIONS: u64 = 4;
    let ns = TestNetns::new();
    let agent = Agent::start(&[]);
    ns.enter(|| {
        let listener = TcpListener::bind("127.0.0.1:7604").unwrap();
        let pairs: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let client = TcpStream::connect("127.0.0.1:7604").unwrap();
                (client, listener.accept().unwrap().0)
            })
            .collect();
        // Long enough to land in the [256, 512) ms bucket, which nothing else on the host fills
        // during the test.
        sleep(Duration::from_millis(300));
        drop(pairs);
    });
    let report = agent.finish();

    let lifetimes = report.json["connections"]["lifetimes"].as_array().unwrap();
    let counted = lifetimes
        .iter()
        .find(|b| b["at_least_ms"] == 256)
        .map_or(0, |b| b["count"].as_u64().unwrap());
    // Each connection ends twice, on the client (which connected) and on the server (accepted).
    assert!(counted >= 2 * CONNECTIONS, "{lifetimes:#?}");
}
