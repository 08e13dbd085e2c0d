//! Real reproductions of the reset causes, on loopback addresses the caller picks.

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    thread::sleep,
    time::Duration,
};

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, TcpKeepalive, Type};

const SETTLE: Duration = Duration::from_millis(100);

/// A client socket bound to `ip` (so its local endpoint is known and unique), connected to `to`.
fn connect_from(ip: IpAddr, to: SocketAddr) -> std::io::Result<(TcpStream, SocketAddr)> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    let local = socket.local_addr()?.as_socket().unwrap();
    socket.connect(&to.into())?;
    Ok((socket.into(), local))
}

fn listen_on(ip: IpAddr) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// connect() to `server`, where nothing listens. Returns the client's local endpoint.
pub fn refused_connect(client_ip: IpAddr, server: SocketAddr) -> SocketAddr {
    let socket = Socket::new(
        Domain::for_address(server),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .unwrap();
    socket.bind(&SocketAddr::new(client_ip, 0).into()).unwrap();
    let local = socket.local_addr().unwrap().as_socket().unwrap();
    let err = socket
        .connect(&server.into())
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    local
}

pub struct Pair {
    pub server: SocketAddr,
    pub client: SocketAddr,
}

/// The server closes an accepted connection while `unread` bytes from the client sit unread.
pub fn close_with_unread_data(ip: IpAddr, unread: usize) -> Pair {
    let (listener, server) = listen_on(ip);
    let (mut client_stream, client) = connect_from(ip, server).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    client_stream.write_all(&vec![b'x'; unread]).unwrap();
    sleep(SETTLE); // the bytes are in the server's receive queue
    drop(accepted);
    let mut buf = [0u8; 16];
    let err = client_stream
        .read(&mut buf)
        .expect_err("the server reset the connection");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    Pair { server, client }
}

/// The client sets SO_LINGER {on, 0} and closes: an abortive close.
pub fn linger_zero_close(ip: IpAddr) -> Pair {
    let (listener, server) = listen_on(ip);
    let (client_stream, client) = connect_from(ip, server).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    Socket::from(client_stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    // The Socket was dropped at the end of the statement above: close() with linger 0.
    let mut buf = [0u8; 16];
    let err = accepted
        .read(&mut buf)
        .expect_err("the client aborted the connection");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    Pair { server, client }
}

/// The server closes cleanly; the client then writes to the closed connection.
pub fn data_after_close(ip: IpAddr) -> Pair {
    let (listener, server) = listen_on(ip);
    let (mut client_stream, client) = connect_from(ip, server).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    drop(accepted);
    sleep(SETTLE); // FIN received: the client is in CLOSE_WAIT, the server in FIN_WAIT2
    client_stream.write_all(b"late").unwrap();
    sleep(SETTLE);
    let second = client_stream.write_all(b"again");
    assert!(second.is_err(), "the reset should break the connection");
    Pair { server, client }
}

/// Established connection; the server resets it (linger 0); the client reads the reset.
/// Returns the pair; the client is the one that receives the reset.
pub fn peer_reset(ip: IpAddr) -> Pair {
    let (listener, server) = listen_on(ip);
    let (mut client_stream, client) = connect_from(ip, server).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    Socket::from(accepted)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    let mut buf = [0u8; 16];
    let err = client_stream
        .read(&mut buf)
        .expect_err("the server aborted");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    let _ = client_stream.shutdown(Shutdown::Both);
    Pair { server, client }
}

/// Sends a bare ACK from `from` to `to`, where no connection exists: a half-open peer's segment.
pub fn stray_ack(from: SocketAddrV4, to: SocketAddrV4) {
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).unwrap();
    raw.bind(&SockAddr::from(SocketAddrV4::new(*from.ip(), 0)))
        .unwrap();
    let segment = tcp_segment(from, to, 0x10);
    raw.send_to(&segment, &SockAddr::from(SocketAddrV4::new(*to.ip(), 0)))
        .unwrap();
}

/// A 20-byte TCP header with a correct checksum (loopback verifies raw sockets' checksums).
fn tcp_segment(from: SocketAddrV4, to: SocketAddrV4, flags: u8) -> [u8; 20] {
    let mut seg = [0u8; 20];
    seg[0..2].copy_from_slice(&from.port().to_be_bytes());
    seg[2..4].copy_from_slice(&to.port().to_be_bytes());
    seg[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    seg[8..12].copy_from_slice(&0x0000_0001u32.to_be_bytes());
    seg[12] = 5 << 4; // data offset: 5 words
    seg[13] = flags;
    seg[14..16].copy_from_slice(&1024u16.to_be_bytes());
    let checksum = tcp_checksum(*from.ip(), *to.ip(), &seg);
    seg[16..18].copy_from_slice(&checksum.to_be_bytes());
    seg
}

fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12 + segment.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(segment);
    let mut sum: u32 = pseudo
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A listener on `addr` with `backlog`, and `clients` non-blocking connects to it: with more
/// clients than the backlog holds (backlog + 1), its accept queue overflows.
pub fn overflowing_listener(
    addr: SocketAddr,
    backlog: i32,
    clients: usize,
) -> (Socket, Vec<Socket>) {
    (listen(addr, backlog), connect_many(addr, clients, None))
}

/// A listening socket with an exact backlog (std's TcpListener always asks for 128).
pub fn listen(addr: SocketAddr, backlog: i32) -> Socket {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(backlog).unwrap();
    socket
}

/// Starts `count` connects that do not wait for the handshake to finish.
pub fn connect_many(to: SocketAddr, count: usize, from_ip: Option<&str>) -> Vec<Socket> {
    (0..count)
        .map(|_| {
            let socket =
                Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP)).unwrap();
            if let Some(ip) = from_ip {
                socket
                    .bind(&SocketAddr::new(ip.parse().unwrap(), 0).into())
                    .unwrap();
            }
            socket.set_nonblocking(true).unwrap();
            let _ = socket.connect(&to.into()); // EINPROGRESS
            socket
        })
        .collect()
}

/// Keepalive on `client` that gives up after one unanswered probe, one idle second in: the
/// kernel aborts the connection within a few seconds once its peer goes silent.
pub fn keepalive_gives_up_fast(client: &TcpStream) {
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(1))
        .with_interval(Duration::from_secs(1))
        .with_retries(1);
    SockRef::from(client).set_tcp_keepalive(&keepalive).unwrap();
}
