//! A datagram of a sock_diag dump's reply: decoding stops within the datagram, and every socket
//! read from it, encoded as the kernel encodes it (a timewait socket's expiry included), reads
//! the same.

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{NLM_F_MULTIPART, NetlinkHeader, NetlinkMessage};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6},
    inet::{InetResponse, InetResponseHeader, SocketId, Timer},
};
use tcpwhy::parsers::{DiagSocket, EXPIRES_IN_MESSAGE, ReplyPart, decode_reply};

/// The smallest netlink message: its header.
const NETLINK_HEADER_BYTES: usize = 16;

fuzz_target!(|data: &[u8]| {
    let mut sockets = Vec::new();
    let _ = decode_reply(data, &mut sockets);
    assert!(sockets.len() <= data.len() / NETLINK_HEADER_BYTES);
    for socket in sockets {
        let mut again = Vec::new();
        let part = decode_reply(&encode(&socket), &mut again).expect("our own encoding decodes");
        assert_eq!(part, ReplyPart::More);
        assert_eq!(again, [socket]);
    }
});

/// One `SOCK_DIAG_BY_FAMILY` response message, as the kernel sends it in a dump.
fn encode(socket: &DiagSocket) -> Vec<u8> {
    let family = match socket.local {
        SocketAddr::V4(_) => AF_INET,
        SocketAddr::V6(_) => AF_INET6,
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_MULTIPART;
    let response = InetResponse {
        header: InetResponseHeader {
            family,
            state: socket.state,
            timer: if socket.window_probing {
                Some(Timer::Probe(std::time::Duration::ZERO))
            } else {
                socket.time_wait_left.map(|_| Timer::TimeWait)
            },
            socket_id: SocketId {
                source_port: socket.local.port(),
                destination_port: socket.remote.port(),
                source_address: socket.local.ip(),
                destination_address: socket.remote.ip(),
                interface_id: 0,
                cookie: [0; 8],
            },
            recv_queue: socket.recv_queue,
            send_queue: socket.send_queue,
            uid: 0,
            inode: socket.inode,
        },
        nlas: Default::default(),
    };
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetResponse(Box::new(response)).into(),
    );
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    // The crate writes no expiry for the TIME_WAIT timer; the kernel does.
    if let Some(left) = socket.time_wait_left {
        let millis = u32::try_from(left.as_millis()).expect("decoded from 32 bits");
        bytes[EXPIRES_IN_MESSAGE..EXPIRES_IN_MESSAGE + 4].copy_from_slice(&millis.to_ne_bytes());
    }
    bytes
}
