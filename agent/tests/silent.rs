//! Connections that die without a reset, reproduced inside network namespaces the tests create
//! (nftables drops the segments there, and `tcp_retries2` is lowered there only), with the agent
//! in the host namespace.

mod support;

use std::{
    io::Write,
    net::{SocketAddr, TcpListener, TcpStream},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;
use socket2::SockRef;
use support::{Agent, Report, netns::TestNetns, our_pid, require_bpf, scenarios};

/// A client connected to `server` in `ns`, with the listener and the accepted end kept open.
fn connected(ns: &TestNetns, server: SocketAddr) -> (TcpListener, TcpStream, TcpStream) {
    ns.enter(|| {
        let listener = TcpListener::bind(server).unwrap();
        let client = TcpStream::connect(server).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (listener, client, accepted)
    })
}

/// Waits until the kernel ends `client` with an error, and returns the errno.
fn wait_for_abort(client: &TcpStream, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(err) = client.take_error().unwrap() {
            return err.raw_os_error().unwrap();
        }
        assert!(Instant::now() < deadline, "the connection was not aborted");
        sleep(Duration::from_millis(100));
    }
}

/// Connects to `server` in `ns` under a running agent, sets the client up with `arm`, then
/// silences the server (its segments are dropped) and writes: the kernel must give up within
/// `within`. Returns the client's endpoint, the errno the write ended in, and the report.
fn write_into_silence(
    ns: &TestNetns,
    server: SocketAddr,
    within: Duration,
    arm: impl FnOnce(&TcpStream),
) -> (SocketAddr, i32, Report) {
    let agent = Agent::start(&[]);
    let (_listener, mut client, _accepted) = connected(ns, server);
    arm(&client);
    ns.drop_tcp_to(server.port());
    client.write_all(b"is anyone there?").unwrap();
    let errno = wait_for_abort(&client, within);
    (client.local_addr().unwrap(), errno, agent.finish())
}

/// The state findings of `cause` for connections from `local` in namespace `inode`.
fn timeouts<'a>(report: &'a Report, cause: &str, local: SocketAddr, inode: u64) -> Vec<&'a Value> {
    report.in_namespace("state", cause, &local.to_string(), inode)
}

#[test]
fn unanswered_retransmits_end_in_retransmit_timeout() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    // 3 timeouts of 200 ms doubling: the kernel gives up after about 3 s instead of 15 minutes.
    ns.sysctl("net.ipv4.tcp_retries2", "3");
    let server: SocketAddr = "127.0.0.1:7651".parse().unwrap();
    let (local, errno, report) = write_into_silence(&ns, server, Duration::from_secs(20), |_| {});
    assert_eq!(errno, libc::ETIMEDOUT);
    let inode = ns.inode();

    let found = timeouts(&report, "retransmit_timeout", local, inode);
    assert_eq!(found.len(), 1, "{}", report.touching(&local.to_string()));
    let finding = found[0];
    assert_eq!(finding["remote"], server.to_string());
    assert_eq!(finding["count"], 1);
    assert_eq!(finding["process"]["pid"], our_pid());
    let evidence = &finding["evidence"];
    assert_eq!(evidence["errors"]["ETIMEDOUT"], 1, "{finding:#}");
    assert_eq!(evidence["states"]["ESTABLISHED"], 1, "{finding:#}");
    assert_eq!(evidence["tcp_retries2"], 3);
    assert_eq!(evidence["user_timeout_ms"], Value::Null);
    assert!(
        evidence["unanswered_retransmits"].as_u64().unwrap() >= 3,
        "{finding:#}"
    );
    assert!(
        evidence["total_retransmits"].as_u64().unwrap() >= 3,
        "{finding:#}"
    );
    // 0.2 + 0.4 + 0.8 + 1.6 s at the least RTO.
    let took = evidence["retransmitting_ms"].as_u64().unwrap();
    assert!((2000..20_000).contains(&took), "{finding:#}");
    assert!(finding["first_seen"].is_string());
    let story = finding["explanation"].as_str().unwrap();
    assert!(story.contains("tcp_retries2=3"), "{story}");
    assert!(story.contains("ETIMEDOUT"), "{story}");
    assert!(
        timeouts(&report, "user_timeout", local, inode).is_empty(),
        "{}",
        report.touching(&local.to_string())
    );
}

#[test]
fn tcp_user_timeout_ends_the_connection_as_user_timeout() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let server: SocketAddr = "127.0.0.1:7652".parse().unwrap();
    // tcp_retries2 stays at its default (15, about 15 minutes): only the user timeout can end it.
    let (local, errno, report) =
        write_into_silence(&ns, server, Duration::from_secs(10), |client| {
            SockRef::from(client)
                .set_tcp_user_timeout(Some(Duration::from_millis(1000)))
                .unwrap();
        });
    assert_eq!(errno, libc::ETIMEDOUT);
    let inode = ns.inode();

    let found = timeouts(&report, "user_timeout", local, inode);
    assert_eq!(found.len(), 1, "{}", report.touching(&local.to_string()));
    let finding = found[0];
    assert_eq!(finding["remote"], server.to_string());
    assert_eq!(finding["process"]["pid"], our_pid());
    assert_eq!(finding["evidence"]["user_timeout_ms"], 1000, "{finding:#}");
    assert_eq!(finding["evidence"]["errors"]["ETIMEDOUT"], 1, "{finding:#}");
    let story = finding["explanation"].as_str().unwrap();
    assert!(story.contains("TCP_USER_TIMEOUT of 1.0 s"), "{story}");
    assert!(timeouts(&report, "retransmit_timeout", local, inode).is_empty());
}

#[test]
fn a_keepalive_abort_is_not_also_a_retransmit_timeout() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let server: SocketAddr = "127.0.0.1:7653".parse().unwrap();
    let agent = Agent::start(&[]);
    let (_listener, client, _accepted) = connected(&ns, server);
    let local = client.local_addr().unwrap();
    scenarios::keepalive_gives_up_fast(&client);
    // The server's answers to the probes never arrive: the keepalive timer aborts with an RST
    // and ETIMEDOUT, which the reset probes report.
    ns.drop_tcp_to(local.port());
    assert_eq!(
        wait_for_abort(&client, Duration::from_secs(10)),
        libc::ETIMEDOUT
    );
    let report = agent.finish();
    let inode = ns.inode();

    let at_client = report.in_namespace_at(&local.to_string(), inode);
    assert!(
        at_client.iter().any(|f| f["kind"] == "rst_sent"),
        "{}",
        report.touching(&local.to_string())
    );
    assert!(
        !at_client
            .iter()
            .any(|f| f["cause"] == "retransmit_timeout" || f["cause"] == "user_timeout"),
        "{}",
        report.touching(&local.to_string())
    );
}

#[test]
fn a_peer_that_stops_reading_is_a_zero_window_stall() {
    if !require_bpf() {
        return;
    }
    use socket2::{Domain, Socket, Type};
    let ns = TestNetns::new();
    let server: SocketAddr = "127.0.0.1:7654".parse().unwrap();
    let agent = Agent::start(&[]);
    let (_listener, mut client, _never_read) = ns.enter(|| {
        // Accepted sockets inherit the listener's small receive buffer: it fills at once.
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener.set_recv_buffer_size(4096).unwrap();
        listener.bind(&server.into()).unwrap();
        listener.listen(1).unwrap();
        let client = TcpStream::connect(server).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (listener, client, accepted)
    });
    let local = client.local_addr().unwrap();
    client.set_nonblocking(true).unwrap();
    let chunk = [0u8; 65536];
    let mut written = 0;
    loop {
        match client.write(&chunk) {
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(err) => panic!("write: {err}"),
        }
    }
    sleep(Duration::from_secs(4));
    let report = agent.finish();
    let inode = ns.inode();

    let found = report.in_namespace("state", "zero_window_stall", &local.to_string(), inode);
    assert_eq!(found.len(), 1, "{}", report.touching(&local.to_string()));
    let finding = found[0];
    assert_eq!(finding["remote"], server.to_string());
    assert_eq!(finding["count"], 1);
    assert_eq!(finding["process"]["pid"], our_pid());
    let evidence = &finding["evidence"];
    assert_eq!(evidence["ongoing"], 1, "{finding:#}");
    let stalled = evidence["stalled_ms"].as_u64().unwrap();
    assert!((2000..=6000).contains(&stalled), "{finding:#}");
    let queued = evidence["queued_bytes"].as_u64().unwrap();
    assert!(
        queued > 0 && queued <= written as u64,
        "{queued} of {written} bytes queued: {finding:#}"
    );
    let story = finding["explanation"].as_str().unwrap();
    assert!(story.contains("stopped reading"), "{story}");
    // The listener's own side reads nothing and sends nothing: no stall of its own.
    assert!(
        report
            .in_namespace("state", "zero_window_stall", &server.to_string(), inode)
            .is_empty()
    );
}
