//! Which end of a connection is the service: the port people name a problem by ("resets on
//! :8081", "retransmits to the database on :5432"), as opposed to a client's ephemeral port,
//! which is new on every connection. Findings are grouped by the service end, so that a
//! thousand connections between one client program and one service are one finding on
//! whichever side of them this host is.

use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum End {
    Local,
    Remote,
}

/// The ports connect() picks from in a namespace: `net.ipv4.ip_local_port_range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EphemeralPorts {
    low: u16,
    high: u16,
}

impl Default for EphemeralPorts {
    /// Linux's default range, for a namespace whose sysctl could not be read.
    fn default() -> Self {
        Self {
            low: 32768,
            high: 60999,
        }
    }
}

impl EphemeralPorts {
    pub fn from_sysctl(range: Option<(u32, u32)>) -> Self {
        range
            .and_then(|(low, high)| Some((u16::try_from(low).ok()?, u16::try_from(high).ok()?)))
            .filter(|(low, high)| low <= high)
            .map(|(low, high)| Self { low, high })
            .unwrap_or_default()
    }

    fn contains(self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }
}

/// The service end of a connection between `local` and `remote`: `known` when the socket's
/// state already says (the listener's side of a handshake, the connecting side of one), else
/// the end whose port is not ephemeral when only one is, else `otherwise`.
pub fn service_end(
    local: SocketAddr,
    remote: SocketAddr,
    known: Option<End>,
    ports: EphemeralPorts,
    otherwise: End,
) -> End {
    if let Some(end) = known {
        return end;
    }
    match (ports.contains(local.port()), ports.contains(remote.port())) {
        (true, false) => End::Remote,
        (false, true) => End::Local,
        _ => otherwise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_end_on_a_fixed_port_is_the_service() {
        let ports = EphemeralPorts::default();
        assert_eq!(
            service_end(at(8081), at(45338), None, ports, End::Remote),
            End::Local
        );
        assert_eq!(
            service_end(at(45338), at(8081), None, ports, End::Local),
            End::Remote
        );
    }

    #[test]
    fn the_socket_state_and_then_the_caller_decide_what_ports_cannot() {
        let ports = EphemeralPorts::default();
        // A service on a high port answering a handshake is still the service.
        assert_eq!(
            service_end(at(50051), at(40000), Some(End::Local), ports, End::Remote),
            End::Local
        );
        assert_eq!(
            service_end(at(50051), at(40000), None, ports, End::Remote),
            End::Remote
        );
        assert_eq!(
            service_end(at(80), at(443), None, ports, End::Local),
            End::Local
        );
    }

    #[test]
    fn a_namespace_range_replaces_the_default_and_nonsense_falls_back_to_it() {
        let narrow = EphemeralPorts::from_sysctl(Some((10000, 10100)));
        assert_eq!(
            service_end(at(10050), at(40000), None, narrow, End::Local),
            End::Remote
        );
        assert_eq!(
            EphemeralPorts::from_sysctl(Some((70000, 80000))),
            EphemeralPorts::default()
        );
        assert_eq!(
            EphemeralPorts::from_sysctl(Some((500, 100))),
            EphemeralPorts::default()
        );
    }
}
