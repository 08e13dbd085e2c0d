//! The drops workload: SYNs that an nftables rule drops inside a network namespace of the
//! bench's own, each one a TCP segment the kernel frees with reason NETFILTER_DROP (the path
//! `skb:kfree_skb` adds its cost to).

use std::{fs::File, net::SocketAddrV4, os::fd::AsRawFd, process::Command, sync::OnceLock};

use anyhow::{Context, Result, bail};

use crate::{run::checked, sockets::connect_nonblocking};

const NAMESPACE: &str = "tcpwhy-bench-drops";
/// The port the namespace's input rule drops (nothing listens there either).
const BLACK_HOLE_PORT: u16 = 9;

/// Creates the namespace and its rule once per bench run (a stale one from a failed run is
/// replaced).
fn namespace() -> Result<&'static str> {
    static CREATED: OnceLock<()> = OnceLock::new();
    if CREATED.get().is_none() {
        remove();
        let ip = |args: &[&str]| checked("ip", Command::new("ip").args(args));
        ip(&["netns", "add", NAMESPACE])?;
        ip(&["-n", NAMESPACE, "link", "set", "lo", "up"])?;
        let nft = |rule: &str| {
            let mut args = vec!["netns", "exec", NAMESPACE, "nft"];
            args.extend(rule.split_whitespace());
            ip(&args)
        };
        nft("add table inet bench")?;
        nft("add chain inet bench in { type filter hook input priority 0 ; }")?;
        nft(&format!(
            "add rule inet bench in tcp dport {BLACK_HOLE_PORT} drop"
        ))?;
        let _ = CREATED.set(());
    }
    Ok(NAMESPACE)
}

/// Deletes the namespace (and its rule); nothing when there is none.
pub fn remove() {
    let _ = Command::new("ip")
        .args(["netns", "del", NAMESPACE])
        .stderr(std::process::Stdio::null())
        .status();
}

/// `n` connects whose SYN the rule drops: each socket is closed while in SYN_SENT, which sends
/// nothing, so each operation is exactly one dropped segment.
pub fn dropped_syns(n: u32) -> Result<()> {
    let handle = File::open(format!("/run/netns/{}", namespace()?))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                // SAFETY: setns on a valid namespace fd affects only this thread.
                if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    bail!("setns: {}", std::io::Error::last_os_error());
                }
                (0..n).try_for_each(|_| connect_into_the_rule())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the drops workload panicked"))?
    })
    .context("the drops workload")
}

/// One non-blocking connect to the dropped port on loopback; its socket is closed on return.
fn connect_into_the_rule() -> Result<()> {
    let target = SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, BLACK_HOLE_PORT);
    connect_nonblocking(target)
        .with_context(|| format!("connecting in the drop namespace to port {BLACK_HOLE_PORT}"))?;
    Ok(())
}
