//! Two namespaces joined through a delay line: a TUN device in each, and this process moving
//! every packet from one to the other after a fixed delay. A real path with a round trip the
//! test chooses, where `tc netem` is not available (this project's build host has no
//! `sch_netem`).

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::netns::{TestNetns, run};

pub const SERVER_IP: &str = "10.78.0.1";
pub const CLIENT_IP: &str = "10.78.0.2";

const DEVICE: &str = "twdelay";
/// `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags.
#[repr(C)]
struct InterfaceRequest {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

pub struct DelayedLink {
    pub server: TestNetns,
    pub client: TestNetns,
    stop: Arc<AtomicBool>,
    pumps: Vec<JoinHandle<()>>,
}

impl DelayedLink {
    /// Each packet waits `one_way` in each direction: the round trip is twice that.
    pub fn new(one_way: Duration) -> Self {
        let (server, client) = (TestNetns::new(), TestNetns::new());
        let server_tun = server.enter(open_tun);
        let client_tun = client.enter(open_tun);
        for (ns, local, peer) in [
            (&server, SERVER_IP, CLIENT_IP),
            (&client, CLIENT_IP, SERVER_IP),
        ] {
            run(&[
                "ip", "-n", &ns.name, "addr", "add", local, "peer", peer, "dev", DEVICE,
            ]);
            run(&["ip", "-n", &ns.name, "link", "set", DEVICE, "up"]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut pumps = Vec::new();
        for (from, to) in [(&client_tun, &server_tun), (&server_tun, &client_tun)] {
            pumps.extend(pump(
                from.try_clone().unwrap(),
                to.try_clone().unwrap(),
                one_way,
                stop.clone(),
            ));
        }
        Self {
            server,
            client,
            stop,
            pumps,
        }
    }
}

impl Drop for DelayedLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for pump in self.pumps.drain(..) {
            let _ = pump.join();
        }
    }
}

/// A TUN device in the calling thread's namespace (the kernel creates it where its file was
/// opened), carrying bare IP packets.
fn open_tun() -> File {
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .expect("/dev/net/tun");
    let mut request = InterfaceRequest {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _rest: [0; 22],
    };
    request.name[..DEVICE.len()].copy_from_slice(DEVICE.as_bytes());
    // SAFETY: a valid TUN fd and an ifreq-sized buffer.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut request) };
    assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    tun
}

/// Moves packets from `from` to `to`, each `delay` after it was read: a reader that stamps
/// them, and a writer that waits for each stamp (in order: the delay is the same for all).
fn pump(
    mut from: File,
    mut to: File,
    delay: Duration,
    stop: Arc<AtomicBool>,
) -> [JoinHandle<()>; 2] {
    let (queue, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let mut poll = libc::pollfd {
                fd: from.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut poll, 1, 50) } <= 0 {
                continue;
            }
            let Ok(n) = from.read(&mut buffer) else { break };
            if queue
                .send((Instant::now() + delay, buffer[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    });
    let writer = std::thread::spawn(move || {
        for (at, packet) in due {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            // The other end may be gone while the link is torn down.
            let _ = to.write(&packet);
        }
    });
    [reader, writer]
}
