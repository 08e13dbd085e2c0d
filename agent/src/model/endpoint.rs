//! Endpoints as users write them: `ip:port`, `[ipv6]:port`, IPv4-mapped IPv6 shown as IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Builds an address from the programs' 16-byte field.
pub fn from_raw(bytes: &[u8; 16], port: u16, ipv6: bool) -> SocketAddr {
    let ip = if ipv6 {
        let v6 = Ipv6Addr::from(*bytes);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    };
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_addresses_read_as_ipv4() {
        let mut raw = [0u8; 16];
        raw[10] = 0xff;
        raw[11] = 0xff;
        raw[12..].copy_from_slice(&[127, 0, 0, 9]);
        assert_eq!(from_raw(&raw, 80, true).to_string(), "127.0.0.9:80");
    }

    #[test]
    fn ipv6_is_bracketed_and_ipv4_uses_four_bytes() {
        let mut raw = [0u8; 16];
        raw[15] = 1;
        assert_eq!(from_raw(&raw, 443, true).to_string(), "[::1]:443");
        let v4 = [10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(from_raw(&v4, 22, false).to_string(), "10.1.2.3:22");
    }
}
