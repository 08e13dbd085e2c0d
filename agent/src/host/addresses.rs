//! The IP addresses this host owns, in every network namespace: a reset from one of them was
//! made on this host (see `analysis::firewall`).

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use anyhow::{Result, bail};

use super::netns::{self, Namespace};

/// The addresses of every namespace's interfaces. A namespace that cannot be entered is skipped:
/// its addresses are then not known to be local, which only withholds an inference.
pub fn of_every_namespace() -> HashSet<IpAddr> {
    netns::list()
        .iter()
        .filter_map(|namespace| of_namespace(namespace).ok())
        .flatten()
        .collect()
}

fn of_namespace(namespace: &Namespace) -> Result<Vec<IpAddr>> {
    namespace.run_in(here)
}

/// The addresses of the calling thread's namespace, from getifaddrs(3).
fn here() -> Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that freeifaddrs releases below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        bail!("getifaddrs: {}", std::io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*entry };
        if let Some(ip) = ip_of(ifa.ifa_addr) {
            found.push(ip);
        }
        entry = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

fn ip_of(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: a non-null ifa_addr points to a sockaddr whose family says its real type.
    match i32::from(unsafe { (*addr).sa_family }) {
        libc::AF_INET => {
            let v4 = unsafe { &*addr.cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            let v6 = unsafe { &*addr.cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_this_namespaces_addresses() {
        let ips = here().unwrap();
        assert!(ips.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{ips:?}");
    }
}
