//! Socket dumps over netlink `NETLINK_SOCK_DIAG` (what `ss` uses): cheaper than parsing
//! `/proc/net/tcp`, and filtered by state in the kernel.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result, bail};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags, Timer},
};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_SOCK_DIAG};

/// One socket as sock_diag describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagSocket {
    pub state: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Listener: accept queue length (`sk_ack_backlog`). Others: unread bytes.
    pub recv_queue: u32,
    /// Listener: accept queue limit (`sk_max_ack_backlog`). Others: unsent bytes.
    pub send_queue: u32,
    pub inode: u32,
    /// The persist timer runs: the peer advertised a zero window and this side probes it.
    pub window_probing: bool,
    /// A timewait socket (TIME_WAIT, or FIN_WAIT2 once its application closed): how long until
    /// its timer removes it. No probe sees that end, so a kept dump drops it by this.
    pub time_wait_left: Option<Duration>,
}

/// Opens a sock_diag socket in the calling thread's namespace; it answers for that namespace
/// from any thread afterwards.
pub fn open_here() -> Result<Socket> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).context("opening a sock_diag socket")?;
    socket.bind_auto().context("binding the sock_diag socket")?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    Ok(socket)
}

/// Dumps the TCP sockets in `states` (both families) of the socket's namespace.
pub fn dump(socket: &Socket, states: StateFlags) -> Result<Vec<DiagSocket>> {
    let mut sockets = Vec::new();
    for family in [AF_INET, AF_INET6] {
        request(socket, family, states.clone())?;
        receive(socket, &mut sockets)?;
    }
    Ok(sockets)
}

fn request(socket: &Socket, family: u8, states: StateFlags) -> Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket
        .send(&buf, 0)
        .context("sending the sock_diag request")?;
    Ok(())
}

fn receive(socket: &Socket, into: &mut Vec<DiagSocket>) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let size = socket
            .recv(&mut &mut buf[..], 0)
            .context("reading the sock_diag reply")?;
        if decode_reply(&buf[..size], into)? == ReplyPart::Last {
            return Ok(());
        }
    }
}

/// Whether a datagram of a dump ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyPart {
    More,
    Last,
}

/// Where `struct inet_diag_msg` keeps `idiag_expires` (milliseconds), counted from the start of
/// its netlink message: after the 16-byte message header, the family, state, timer and
/// retransmit bytes and the 48-byte socket id. The decoder keeps it for every timer but
/// TIME_WAIT's, the one wanted here.
pub const EXPIRES_IN_MESSAGE: usize = 16 + 4 + 48;

fn time_wait_expiry(message: &[u8]) -> Option<u64> {
    let bytes = message.get(EXPIRES_IN_MESSAGE..EXPIRES_IN_MESSAGE + 4)?;
    Some(u64::from(u32::from_ne_bytes(bytes.try_into().ok()?)))
}

/// Decodes one datagram of a dump's reply (the kernel's bytes) into `into`.
pub fn decode_reply(datagram: &[u8], into: &mut Vec<DiagSocket>) -> Result<ReplyPart> {
    let mut offset = 0;
    while offset < datagram.len() {
        let message = NetlinkMessage::<SockDiagMessage>::deserialize(&datagram[offset..])
            .context("decoding a sock_diag message")?;
        let length = message.header.length as usize;
        match message.payload {
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                let h = &response.header;
                into.push(DiagSocket {
                    state: h.state,
                    local: SocketAddr::new(h.socket_id.source_address, h.socket_id.source_port),
                    remote: SocketAddr::new(
                        h.socket_id.destination_address,
                        h.socket_id.destination_port,
                    ),
                    recv_queue: h.recv_queue,
                    send_queue: h.send_queue,
                    inode: h.inode,
                    window_probing: matches!(h.timer, Some(Timer::Probe(_))),
                    time_wait_left: match h.timer {
                        Some(Timer::TimeWait) => datagram
                            .get(offset..offset + length)
                            .and_then(time_wait_expiry)
                            .map(Duration::from_millis),
                        _ => None,
                    },
                });
            }
            NetlinkPayload::Done(_) => return Ok(ReplyPart::Last),
            NetlinkPayload::Error(err) => bail!("sock_diag error: {err:?}"),
            _ => {}
        }
        if length == 0 {
            break;
        }
        offset += length;
    }
    Ok(ReplyPart::More)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_listener_shows_its_queue_limit_and_inode() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sockets = dump(&open_here().unwrap(), StateFlags::LISTEN).unwrap();
        let ours = sockets
            .iter()
            .find(|s| s.local == addr)
            .expect("our listener is dumped");
        assert_eq!(ours.state, 10);
        assert_eq!(ours.recv_queue, 0);
        assert!(ours.send_queue > 0, "std listens with a backlog of 128");
        assert_ne!(ours.inode, 0);
    }

    #[test]
    fn a_timewait_socket_says_when_its_timer_ends_it() {
        use std::{io::Read, net::TcpStream};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let closed_first = client.local_addr().unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        drop(client);
        let _ = accepted.read(&mut [0; 1]);
        drop(accepted);
        std::thread::sleep(Duration::from_millis(50));

        let sockets = dump(&open_here().unwrap(), StateFlags::TIME_WAIT).unwrap();
        let ours = sockets
            .iter()
            .find(|s| s.local == closed_first)
            .expect("the side that closed first waits");
        let left = ours.time_wait_left.expect("on the TIME_WAIT timer");
        assert!(
            left > Duration::from_secs(50) && left <= Duration::from_secs(60),
            "{left:?}"
        );
    }
}
