//! A record from the programs' ring buffers, read as a reset (the events ring) and as a failed
//! connect (the connect-failures ring): short records and unknown origins are refused, bytes past
//! the record are ignored, and what is decoded carries the record's own values.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use tcpwhy::parsers::{ConnectFailed, Reset};
use tcpwhy_common::{
    flow::ConnectFailure,
    reset::{ResetEvent, ResetOrigin, evidence},
};

fuzz_target!(|data: &[u8]| {
    check_reset(data);
    check_connect_failure(data);
});

/// The record at the start of `data`, when there is one.
fn record<T: Copy>(data: &[u8]) -> Option<T> {
    // SAFETY: the length is checked and the records are plain old data.
    (data.len() >= size_of::<T>())
        .then(|| unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) })
}

fn check_reset(data: &[u8]) {
    let decoded = Reset::decode(data);
    let Some(raw) = record::<ResetEvent>(data) else {
        assert!(decoded.is_err(), "a short record decoded");
        return;
    };
    let Some(origin) = ResetOrigin::from_u8(raw.origin) else {
        assert!(decoded.is_err(), "origin {} decoded", raw.origin);
        return;
    };
    let reset = decoded.expect("a whole record with a known origin decodes");
    assert_eq!(
        Reset::decode(&data[..size_of::<ResetEvent>()])
            .ok()
            .as_ref(),
        Some(&reset),
        "bytes past the record changed it"
    );
    assert_eq!(reset.origin, origin);
    assert_eq!(reset.timestamp_ns, raw.timestamp_ns);
    assert_eq!(
        (reset.local.port(), reset.remote.port()),
        (raw.local_port, raw.remote_port)
    );
    assert_eq!(reset.has_socket(), raw.evidence & evidence::SOCKET != 0);
    assert_eq!(
        reset.socket.is_some(),
        raw.evidence & evidence::FULL_SOCKET != 0
    );
    if raw.evidence & evidence::IPV6 == 0 {
        let local: [u8; 4] = raw.local_addr[..4].try_into().unwrap();
        assert_eq!(reset.local.ip(), IpAddr::V4(Ipv4Addr::from(local)));
    }
    if let Some(owner) = &reset.owner {
        assert_eq!(owner.pid, raw.owner_pid);
        assert!(!owner.comm.contains('\0') && owner.comm.len() <= 3 * raw.owner_comm.len());
    }
}

fn check_connect_failure(data: &[u8]) {
    let decoded = ConnectFailed::decode(data);
    let Some(raw) = record::<ConnectFailure>(data) else {
        assert!(decoded.is_err(), "a short record decoded");
        return;
    };
    let failed = decoded.expect("a whole record decodes");
    assert_eq!(
        ConnectFailed::decode(&data[..size_of::<ConnectFailure>()])
            .ok()
            .as_ref(),
        Some(&failed),
        "bytes past the record changed it"
    );
    assert_eq!(failed.waited.is_some(), raw.waited_ns > 0);
    assert_eq!(
        failed.owner.as_ref().map(|o| o.pid),
        (raw.owner_pid != 0).then_some(raw.owner_pid)
    );
    assert_eq!(
        (failed.flow.local.port(), failed.flow.remote.port()),
        (raw.key.local_port, raw.key.remote_port)
    );
}
