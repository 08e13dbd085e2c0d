//! Network namespaces a test creates for itself (and deletes when dropped). Sysctls are only
//! ever changed inside them, never on the host.

use std::{
    fs::File,
    os::fd::AsRawFd,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

/// One namespace with loopback up.
pub struct TestNetns {
    pub name: String,
}

pub fn run(args: &[&str]) {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect(args[0]);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn unique_suffix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestNetns {
    pub fn new() -> Self {
        let name = format!("tcpwhy-{}", unique_suffix());
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    pub fn sysctl(&self, key: &str, value: &str) -> &Self {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.name,
            "sysctl",
            "-q",
            "-w",
            &format!("{key}={value}"),
        ]);
        self
    }

    pub fn nft(&self, rule: &str) {
        let mut args = vec!["ip", "netns", "exec", &self.name, "nft"];
        args.extend(rule.split_whitespace());
        run(&args);
    }

    /// Silently drops every TCP segment arriving for `port` in the namespace: a black hole.
    pub fn drop_tcp_to(&self, port: u16) {
        self.drop_tcp("dport", port);
    }

    /// Silently drops every TCP segment sent from `port` in the namespace: its peers never
    /// hear from it.
    pub fn drop_tcp_from(&self, port: u16) {
        self.drop_tcp("sport", port);
    }

    fn drop_tcp(&self, end: &str, port: u16) {
        let table = format!("drop_{end}_{port}");
        self.nft(&format!("add table inet {table}"));
        self.nft(&format!(
            "add chain inet {table} in {{ type filter hook input priority 0 ; }}"
        ));
        self.nft(&format!("add rule inet {table} in tcp {end} {port} drop"));
    }

    /// Runs `work` on a thread inside the namespace: sockets it creates live there.
    pub fn enter<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        let handle = File::open(format!("/run/netns/{}", self.name)).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns on a valid namespace fd affects only this thread.
                    let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                    work()
                })
                .join()
                .unwrap()
        })
    }

    /// The namespace's inode, as tcpwhy reports it.
    pub fn inode(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/{}", self.name))
            .unwrap()
            .ino()
    }

    /// Command prefix to run a program inside the namespace.
    pub fn exec(&self) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]);
        command
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A server namespace and a client namespace joined by a veth pair: 10.77.0.1 ↔ 10.77.0.2.
/// The addresses only exist inside the two namespaces, so every pair can reuse them.
pub struct TestLink {
    pub server: TestNetns,
    pub client: TestNetns,
}

pub const SERVER_IP: &str = "10.77.0.1";
pub const CLIENT_IP: &str = "10.77.0.2";

impl TestLink {
    pub fn new() -> Self {
        let (server, client) = (TestNetns::new(), TestNetns::new());
        let suffix = unique_suffix();
        let (s_if, c_if) = (format!("tws{suffix}"), format!("twc{suffix}"));
        assert!(s_if.len() <= 15, "interface name too long: {s_if}");
        run(&[
            "ip", "link", "add", &s_if, "type", "veth", "peer", "name", &c_if,
        ]);
        run(&["ip", "link", "set", &s_if, "netns", &server.name]);
        run(&["ip", "link", "set", &c_if, "netns", &client.name]);
        for (ns, ifname, ip) in [(&server, &s_if, SERVER_IP), (&client, &c_if, CLIENT_IP)] {
            run(&[
                "ip",
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                ifname,
            ]);
            run(&["ip", "-n", &ns.name, "link", "set", ifname, "up"]);
        }
        Self { server, client }
    }
}
