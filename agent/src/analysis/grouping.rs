//! Groups resets by what a person acts on: the service end of the connections (see
//! [`super::service`]) and, where that end is the peer's, the program that talked to it. A
//! server's resets are one finding per port it serves, and a client program's are one per
//! service it talks to, whichever side sent them: grouping by both endpoints would make every
//! connection (each from its own ephemeral port) a finding of its own.

use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
};

use super::{classify::Classified, service::End};
use crate::model::{Cause, Direction, OwnerSource, Process};

/// Everything the explanation and the evidence of one finding need.
#[derive(Debug, Clone)]
pub struct ResetGroup {
    pub direction: Direction,
    pub cause: Cause,
    pub rule: &'static str,
    pub count: u64,
    /// Of `count`, resets the kernel aggregated (past the per-event rate): their other ends
    /// are known only by a sample each, so the distinct peers are a lower bound.
    pub aggregated: u64,
    /// The end the group is named by; the other end varies within it.
    pub service: End,
    /// The local endpoint (when the service end is remote: the first seen).
    pub local: SocketAddr,
    /// The remote endpoint (when the service end is local: the first seen).
    pub sample_remote: SocketAddr,
    /// The endpoints of the other end, up to [`MAX_PEERS_TRACKED`].
    pub peers: HashSet<SocketAddr>,
    /// The first few of them, in the order seen.
    pub sample_peers: Vec<SocketAddr>,
    /// The most recently seen owner.
    pub process: Option<Process>,
    pub state: Option<u8>,
    pub tw_substate: Option<u8>,
    pub reason: Option<String>,
    pub segment_flags: Option<u8>,
    pub unread_bytes_max: u32,
    pub linger_zero: bool,
    pub orphan: bool,
    pub netns: Option<u32>,
    pub origin: &'static str,
    pub owner_learned_from: Option<OwnerSource>,
    pub first_ns: u64,
    pub last_ns: u64,
}

impl ResetGroup {
    pub fn distinct_peers(&self) -> usize {
        self.peers.len()
    }

    /// An empty group for resets like `seen`.
    pub fn start(seen: &Classified) -> Self {
        let reset = seen.reset;
        ResetGroup {
            direction: reset.direction,
            cause: seen.cause,
            rule: seen.rule,
            service: seen.service,
            local: reset.local,
            sample_remote: reset.remote,
            first_ns: reset.first_ns(),
            origin: seen.origin,
            ..ResetGroup::default()
        }
    }

    /// A group of one: how the event stream reports a single reset.
    pub fn single(seen: &Classified) -> Self {
        let mut group = Self::start(seen);
        group.absorb(seen);
        group
    }

    /// Counts one more reset and takes in its evidence.
    pub fn absorb(&mut self, seen: &Classified) {
        let reset = seen.reset;
        self.count += reset.count();
        if reset.aggregate.is_some() {
            self.aggregated += reset.count();
        }
        // Aggregates arrive after the resets sent one by one in the same period.
        self.first_ns = self.first_ns.min(reset.first_ns());
        self.last_ns = self.last_ns.max(reset.timestamp_ns);
        let peer = match self.service {
            End::Local => reset.remote,
            End::Remote => reset.local,
        };
        let new_peer = self.peers.len() < MAX_PEERS_TRACKED && self.peers.insert(peer);
        if new_peer && self.sample_peers.len() < SAMPLE_PEERS {
            self.sample_peers.push(peer);
        }
        if let Some(owner) = &reset.owner {
            self.owner_learned_from = Some(owner.source);
            self.process = Some(owner.clone());
        }
        self.state = self.state.or(reset.state);
        self.tw_substate = self.tw_substate.or(reset.tw_substate);
        if self.reason.is_none() {
            self.reason = seen.reason.map(str::to_string);
        }
        self.segment_flags = self.segment_flags.or(reset.segment_flags);
        if let Some(socket) = reset.socket {
            self.unread_bytes_max = self.unread_bytes_max.max(socket.unread_bytes.unwrap_or(0));
            self.linger_zero |= socket.linger_on && socket.linger_zero;
            self.orphan |= socket.orphan;
        }
        self.netns = self.netns.or(reset.netns);
    }
}

impl Default for ResetGroup {
    fn default() -> Self {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Self {
            direction: Direction::Sent,
            cause: Cause::Unclassified,
            rule: "",
            count: 0,
            aggregated: 0,
            service: End::Local,
            local: unspecified,
            sample_remote: unspecified,
            peers: HashSet::new(),
            sample_peers: Vec::new(),
            process: None,
            state: None,
            tw_substate: None,
            reason: None,
            segment_flags: None,
            unread_bytes_max: 0,
            linger_zero: false,
            orphan: false,
            netns: None,
            origin: "",
            owner_learned_from: None,
            first_ns: 0,
            last_ns: 0,
        }
    }
}

/// Caps the peers remembered per group: the count stays exact, memory stays bounded.
const MAX_PEERS_TRACKED: usize = 1024;
/// Peers a finding names.
const SAMPLE_PEERS: usize = 5;

/// A group's identity: direction, cause, the service endpoint and, when that is the peer's,
/// the program on this end (by name: three runs of curl are one story, not three).
type GroupKey = (Direction, Cause, End, SocketAddr, Option<String>);

#[derive(Default)]
pub struct Groups {
    groups: BTreeMap<GroupKey, ResetGroup>,
}

impl Groups {
    pub fn add(&mut self, seen: &Classified) {
        let reset = seen.reset;
        let key = match seen.service {
            End::Local => (reset.direction, seen.cause, End::Local, reset.local, None),
            End::Remote => (
                reset.direction,
                seen.cause,
                End::Remote,
                reset.remote,
                reset.owner.as_ref().map(|p| p.comm.clone()),
            ),
        };
        self.groups
            .entry(key)
            .or_insert_with(|| ResetGroup::start(seen))
            .absorb(seen);
    }
    /// Groups by kind, most frequent first.
    pub fn into_sorted(self) -> Vec<ResetGroup> {
        let mut groups: Vec<_> = self.groups.into_values().collect();
        groups.sort_by(|a, b| {
            (a.direction, std::cmp::Reverse(a.count), a.cause, a.local).cmp(&(
                b.direction,
                std::cmp::Reverse(b.count),
                b.cause,
                b.local,
            ))
        });
        groups
    }
}
