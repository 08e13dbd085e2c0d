//! One running set of probes: resolve the kernel's layout, load, attach, read the programs'
//! events and maps, detach (on drop).

use std::{
    cell::RefCell,
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use aya::{
    Ebpf,
    maps::{Array, HashMap as AyaHashMap, Map, PerCpuHashMap, RingBuf},
};
use tcpwhy_common::{
    close::SilentClose,
    drop::{DROP_REASON_SLOTS, DropCounts, DropKey},
    family::AF_INET6,
    flow::{FlowKey, FlowRetransmits},
    latency::{LatencyHistogram, LatencyKey, LatencyKind, TOTAL_SLOTS_PER_KIND},
    layout::{ABSENT, KernelLayout},
    listen_overflow::ListenOverflows,
    maps::{
        CONNECT_FAILURES, COUNTER_SLOTS, COUNTERS, Counter, DROP_REASONS, EVENTS, LATENCIES,
        LATENCY_TOTALS, LIFETIME_SLOTS, LIFETIMES, LISTEN_BACKLOGS, LISTEN_OVERFLOWS,
        LISTENER_ARRIVALS, RESET_AGGREGATES, RESET_AGGREGATES_SIDE, RETRANSMIT_FLOWS,
        RETRANSMIT_KINDS, RETRANSMITS, RetransmitKind, SILENT_CLOSES, SOCKETS, STATE_TRANSITIONS,
        SYNACK_RETRANSMITS, TCP_DROPS, TCP_STATES,
    },
    owner::ListenCall,
    reset::{ResetAggregate, ResetAggregateKey},
    socket::SocketRecord,
    synack::{ListenerId, SynAckRetransmits},
    tcp_state,
};

use super::{
    kernel_view::{ListenerProbes, StateChanges},
    map_batch::for_each_entry,
    per_cpu_sums::per_cpu_sums,
    ring::EventRing,
};
use crate::{
    analysis::{latency::Measured, queues::attribution::SynAckSeen},
    events::{
        close::TimedOut,
        drop::TcpDrops,
        flow::{ConnectFailed, RetransmitFlow},
        reset::Reset,
    },
    kernel::{
        btf::KernelBtf,
        drop_reasons::{self, DropReasons},
        layout, memlock,
        release::{self, KernelInfo},
        reset_reasons::{self, ResetReasons},
        tracefs,
    },
    model::{Flow, OwnerSource, Process, endpoint},
    probes::{
        attach::{AttachPlan, attach_all, require_some},
        catalog,
        load::{self, EventFlow},
        method::Method,
        privileges::{coverage_lost, missing_capabilities},
        report::ProbeReport,
    },
};

/// Why a session could not start, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "tcpwhy needs to load eBPF programs, which requires root or the capabilities {}; missing: {}",
        "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)",
        .0.join(", ")
    )]
    MissingPrivileges(Vec<&'static str>),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub struct Session {
    // Dropping `ebpf` detaches every link and closes every program and map: nothing is pinned.
    ebpf: Ebpf,
    ring: EventRing,
    failures: EventRing,
    /// Which of the reset aggregates the programs add to (the map starts at 0; only user space
    /// changes it).
    aggregate_side: u32,
    pub probes: Vec<ProbeReport>,
    pub kernel: KernelInfo,
    /// The names of `enum sk_rst_reason` on this kernel.
    pub reasons: ResetReasons,
    /// The names of `enum skb_drop_reason` on this kernel.
    pub drop_reasons: DropReasons,
    /// Things that work less well than they could, for the user to read.
    pub warnings: Vec<String>,
    /// Whether the kernel's BTF has `tcp_sock.srtt_us` (accept handshakes, SRTT at close).
    pub srtt_readable: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub events_lost: u64,
    pub resets_sent: u64,
    pub resets_received: u64,
    pub resets_filtered_out: u64,
    /// Latency histograms the programs created; those not in the map now were evicted.
    pub latency_histograms: u64,
    /// Resets the kernel counted in aggregates instead of sending each.
    pub resets_aggregated: u64,
    /// connect() calls an RST refused (counted, never sent).
    pub connects_refused: u64,
}

/// The kernel layout and reset reason names from the kernel's BTF, and whether it could be read.
/// The parsed BTF (tens of MiB) is dropped on return.
fn resolve_from_btf(
    tracefs: Option<&Path>,
    warnings: &mut Vec<String>,
) -> (KernelLayout, ResetReasons, DropReasons, bool) {
    match KernelBtf::from_sys_fs() {
        Ok(btf) => {
            let resolved = layout::resolve(&btf, tracefs);
            for missing in &resolved.missing {
                tracing::debug!(%missing, "kernel layout field unresolved");
            }
            (
                resolved.layout,
                reset_reasons::of_kernel(&btf),
                drop_reasons::of_kernel(&btf),
                true,
            )
        }
        Err(err) => {
            warnings.push(format!(
                "{err:#}: socket evidence (state, linger, unread bytes, owner) is unavailable, \
                 and tp_btf and fentry cannot be used"
            ));
            (
                KernelLayout::UNKNOWN,
                ResetReasons::default(),
                DropReasons::default(),
                false,
            )
        }
    }
}

/// Socket records asked for per read: 80 KiB of values.
const SOCKET_RECORDS_PER_READ: u32 = 1024;

/// Longer than any program run that read which aggregates to add to before they were switched.
const AGGREGATE_WRITERS_DONE: std::time::Duration = std::time::Duration::from_millis(5);

/// Hands freed heap back to the kernel: after start-up (parsed BTF, the object's sections), and
/// now and then while running (bursts of events leave freed memory behind). glibc keeps freed
/// memory below the top of the heap resident otherwise.
pub fn release_freed_memory() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}

impl Session {
    /// `flow`: the ring's size, the port filter (the counters count every reset) and the
    /// per-event budget.
    pub fn start(methods: &[Method], flow: EventFlow) -> Result<Self, StartError> {
        let missing = missing_capabilities();
        if !missing.is_empty() {
            return Err(StartError::MissingPrivileges(missing));
        }
        let mut warnings = Vec::new();

        let tracefs: Option<PathBuf> = match tracefs::locate_or_mount() {
            Ok(path) => Some(path),
            Err(err) => {
                warnings.push(format!(
                    "{err}: classic tracepoints cannot be used (BTF tracepoints and function \
                     probes still can)"
                ));
                None
            }
        };
        warnings.extend(coverage_lost());

        let (kernel_layout, reasons, drop_reasons, btf_found) =
            resolve_from_btf(tracefs.as_deref(), &mut warnings);
        // Parsed after the other copy of the BTF is gone: both at once doubled the peak memory.
        let aya_btf = aya::Btf::from_sys_fs().ok();
        let tracepoint_has_reason = kernel_layout.tp_send_reset_reason != ABSENT
            || kernel_layout.tp_btf_send_reset_has_reason != 0;
        // The names must be known too: a reason that cannot be named explains nothing.
        let drops_have_reason = !drop_reasons.is_empty()
            && (kernel_layout.tp_kfree_skb_reason != ABSENT
                || kernel_layout.tp_btf_kfree_skb_arity >= 3);

        let mut ebpf = memlock::with_raised_limit(&mut warnings, || {
            load::load(&kernel_layout, aya_btf.as_ref(), flow)
        })?;
        let probes = attach_all(
            &mut ebpf,
            &AttachPlan {
                methods,
                btf: aya_btf.as_ref(),
                tracepoint_has_reason,
                drops_have_reason,
                layout: &kernel_layout,
            },
        );
        require_some(&probes)?;
        drop(aya_btf);
        release_freed_memory();

        let ring = RingBuf::try_from(ebpf.take_map(EVENTS).context("map EVENTS missing")?)
            .context("map EVENTS is not a ring buffer")?;
        let failures = RingBuf::try_from(
            ebpf.take_map(CONNECT_FAILURES)
                .context("map CONNECT_FAILURES missing")?,
        )
        .context("map CONNECT_FAILURES is not a ring buffer")?;
        Ok(Self {
            ebpf,
            ring: EventRing::new(ring)?,
            failures: EventRing::new(failures)?,
            aggregate_side: 0,
            probes,
            kernel: KernelInfo {
                release: release::release(),
                btf: btf_found,
                reset_reasons: !reasons.is_empty(),
            },
            reasons,
            drop_reasons,
            warnings,
            srtt_readable: kernel_layout.tcp_srtt_us != ABSENT,
        })
    }

    /// Waits for events, then returns them (and any others already buffered).
    pub async fn next_events(&mut self) -> Result<Vec<Observed>> {
        let seen = RefCell::new(Vec::new());
        tokio::select! {
            result = self.ring.drain(|bytes| decode_reset(bytes, &seen)) => result?,
            result = self.failures.drain(|bytes| decode_failure(bytes, &seen)) => result?,
        }
        Ok(seen.into_inner())
    }

    /// The events already buffered, without waiting, and the resets aggregated until the
    /// previous call (see [`Session::flip_aggregates`]).
    pub fn remaining_events(&mut self) -> Vec<Observed> {
        let seen = RefCell::new(Vec::new());
        self.ring.drain_now(|bytes| decode_reset(bytes, &seen));
        self.failures
            .drain_now(|bytes| decode_failure(bytes, &seen));
        let mut seen = seen.into_inner();
        seen.extend(self.flip_aggregates().into_iter().map(Observed::Reset));
        seen
    }

    /// Every event there is, the aggregates the programs are adding to included: for the end.
    pub fn last_events(&mut self) -> Vec<Observed> {
        let mut seen = self.remaining_events();
        // A program that read the side before the flip finishes within microseconds.
        std::thread::sleep(AGGREGATE_WRITERS_DONE);
        seen.extend(self.remaining_events());
        seen
    }

    /// Empties the aggregates the programs stopped adding to at the previous call (no program
    /// can still be adding to them), then points the programs at them: the two maps trade
    /// places every call, and no count is lost between reading an entry and deleting it.
    fn flip_aggregates(&mut self) -> Vec<Reset> {
        let idle = 1 - self.aggregate_side;
        let drained = self.drain_aggregates(RESET_AGGREGATES[idle as usize]);
        match self.set_aggregate_side(idle) {
            Ok(()) => self.aggregate_side = idle,
            Err(err) => tracing::warn!("cannot switch the reset aggregates: {err:#}"),
        }
        drained
    }

    fn set_aggregate_side(&mut self, side: u32) -> Result<()> {
        let map = self
            .ebpf
            .map_mut(RESET_AGGREGATES_SIDE)
            .context("map RESET_AGGREGATES_SIDE missing")?;
        Array::<_, u32>::try_from(map)?.set(0, side, 0)?;
        Ok(())
    }

    fn drain_aggregates(&mut self, name: &str) -> Vec<Reset> {
        let Some(map) = self.ebpf.map_mut(name) else {
            return Vec::new();
        };
        let Ok(mut per_cpu) = PerCpuHashMap::<_, ResetAggregateKey, ResetAggregate>::try_from(map)
        else {
            return Vec::new();
        };
        let entries: Vec<_> = per_cpu.iter().filter_map(Result::ok).collect();
        let mut resets = Vec::with_capacity(entries.len());
        for (key, values) in entries {
            if let Err(err) = per_cpu.remove(&key) {
                tracing::warn!("cannot empty a reset aggregate: {err}");
            }
            match Reset::from_aggregate(&key, &values) {
                Ok(reset) => resets.push(reset),
                Err(err) => tracing::warn!("skipping an undecodable reset aggregate: {err:#}"),
            }
        }
        resets
    }

    /// Retransmits per flow and kind since attach (per-CPU values merged).
    pub fn retransmit_flows(&self) -> Vec<RetransmitFlow> {
        let Some(map) = self.ebpf.map(RETRANSMIT_FLOWS) else {
            return Vec::new();
        };
        let Ok(per_cpu) = PerCpuHashMap::<_, FlowKey, FlowRetransmits>::try_from(map) else {
            return Vec::new();
        };
        per_cpu
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(key, values)| {
                let kind = RetransmitKind::from_u16(key.tag)?;
                let counted: Vec<&FlowRetransmits> =
                    values.iter().filter(|v| v.count > 0).collect();
                let owner = counted
                    .iter()
                    .find(|v| v.owner_pid != 0)
                    .map(|v| Process::from_raw(v.owner_pid, &v.owner_comm, OwnerSource::Syscall));
                Some(RetransmitFlow {
                    flow: Flow::from_key(&key),
                    kind,
                    count: counted.iter().map(|v| v.count).sum(),
                    first_ns: counted.iter().map(|v| v.first_ns).min().unwrap_or(0),
                    last_ns: counted.iter().map(|v| v.last_ns).max().unwrap_or(0),
                    owner,
                })
            })
            .collect()
    }

    /// Connections the retransmission timer ended since attach (the newest, if more than the
    /// map holds).
    pub fn timed_out(&self) -> Vec<TimedOut> {
        let Some(map) = self.ebpf.map(SILENT_CLOSES) else {
            return Vec::new();
        };
        let Ok(closes) = AyaHashMap::<_, FlowKey, SilentClose>::try_from(map) else {
            return Vec::new();
        };
        closes
            .iter()
            .filter_map(Result::ok)
            .map(|(key, raw)| TimedOut::from_raw(&key, &raw))
            .collect()
    }

    /// TCP drops since attach, per (reason, namespace, local endpoint).
    pub fn tcp_drops(&self) -> Vec<TcpDrops> {
        let Some(map) = self.ebpf.map(TCP_DROPS) else {
            return Vec::new();
        };
        let Ok(per_cpu) = PerCpuHashMap::<_, DropKey, DropCounts>::try_from(map) else {
            return Vec::new();
        };
        per_cpu
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(key, values)| TcpDrops::merge(&key, &values))
            .collect()
    }

    /// TCP drops since attach by raw reason, non-zero only. Unlike [`Session::tcp_drops`], whose
    /// entries an LRU map may evict, these only grow.
    pub fn drops_by_reason(&self) -> Result<Vec<(u32, u64)>> {
        Ok((0..)
            .zip(self.sums(DROP_REASONS, DROP_REASON_SLOTS)?)
            .filter(|&(_, count)| count > 0)
            .collect())
    }

    /// Every latency histogram in the kernel's map (since attach, less what it evicted).
    pub fn latencies(&self) -> Vec<Measured> {
        let Some(map) = self.ebpf.map(LATENCIES) else {
            return Vec::new();
        };
        let Ok(histograms) = AyaHashMap::<_, LatencyKey, LatencyHistogram>::try_from(map) else {
            return Vec::new();
        };
        histograms
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(key, histogram)| {
                Some(Measured {
                    kind: LatencyKind::from_u16(key.kind)?,
                    netns: u64::from(key.netns),
                    endpoint: endpoint::from_raw(&key.addr, key.port, key.family == AF_INET6),
                    histogram,
                })
            })
            .collect()
    }

    /// Handshake durations since attach for `kind` (nothing evicted): the bucket counts, then
    /// the sum of µs.
    pub fn latency_totals(&self, kind: LatencyKind) -> Result<Vec<u64>> {
        let base = kind as u32 * TOTAL_SLOTS_PER_KIND;
        let mut sums = self.sums(LATENCY_TOTALS, base + TOTAL_SLOTS_PER_KIND)?;
        Ok(sums.split_off(base as usize))
    }

    /// Since when (CLOCK_MONOTONIC ns) connections have been in CLOSE_WAIT or FIN_WAIT2, for
    /// those that entered the state while tcpwhy ran: from the socket records, read in chunks
    /// (a map of 65,536 records, most of them of closed sockets).
    pub fn state_since(&self) -> HashMap<(u8, Flow), u64> {
        let mut since = HashMap::new();
        let mut keep = |record: &SocketRecord| {
            if let Some((state, at)) = record.waiting_since() {
                // A record its socket's last transition never reached (a probe that did not
                // run) may name the same connection: the later start is the live one.
                let known = since
                    .entry((state, Flow::from_key(&record.timed)))
                    .or_insert(at);
                *known = (*known).max(at);
            }
        };
        let batched = match self.ebpf.map(SOCKETS) {
            Some(Map::LruHashMap(data)) => for_each_entry::<u64, SocketRecord>(
                data,
                1,
                SOCKET_RECORDS_PER_READ,
                usize::MAX,
                |_, record| keep(&record[0]),
            )
            .is_ok(),
            _ => false,
        };
        if !batched {
            // Batch lookups answer EINVAL before Linux 5.6: one entry at a time there.
            if let Some(Ok(records)) = self
                .ebpf
                .map(SOCKETS)
                .map(AyaHashMap::<_, u64, SocketRecord>::try_from)
            {
                records
                    .iter()
                    .filter_map(Result::ok)
                    .for_each(|(_, record)| keep(&record));
            }
        }
        since
    }

    /// Connection lifetimes since attach: slot i counts lifetimes in [2^i, 2^(i+1)) ms.
    pub fn lifetimes(&self) -> Result<Vec<u64>> {
        self.sums(LIFETIMES, LIFETIME_SLOTS)
    }

    /// State transitions counted since attach: (from, to, count), non-zero only.
    pub fn state_transitions(&self) -> Result<Vec<(u8, u8, u64)>> {
        Ok((0..)
            .zip(self.sums(STATE_TRANSITIONS, TCP_STATES * TCP_STATES)?)
            .filter(|&(_, count)| count > 0)
            .map(|(slot, count)| ((slot / TCP_STATES) as u8, (slot % TCP_STATES) as u8, count))
            .collect())
    }

    /// The retransmit kinds the tracepoints count (tail loss probes need a function probe).
    pub const RETRANSMIT_KINDS: [RetransmitKind; 3] = [
        RetransmitKind::Syn,
        RetransmitKind::SynAck,
        RetransmitKind::Data,
    ];

    /// Retransmits counted since attach, by kind.
    pub fn retransmits(&self) -> Result<Vec<(RetransmitKind, u64)>> {
        let sums = self.sums(RETRANSMITS, RETRANSMIT_KINDS)?;
        Ok(Self::RETRANSMIT_KINDS
            .into_iter()
            .map(|kind| (kind, sums[kind as usize]))
            .collect())
    }

    /// Run time and run count per loaded program, from the kernel's BPF statistics (zero unless
    /// `kernel.bpf_stats_enabled=1`).
    pub fn program_stats(&self) -> Vec<(String, std::time::Duration, u64)> {
        self.ebpf
            .programs()
            .filter_map(|(name, program)| {
                let info = program.info().ok()?;
                Some((name.to_string(), info.run_time(), info.run_count()))
            })
            .collect()
    }

    /// Sums the programs' per-CPU counters.
    pub fn counters(&self) -> Result<Counters> {
        let sums = self.sums(COUNTERS, COUNTER_SLOTS)?;
        let sum = |slot: Counter| sums[slot as usize];
        Ok(Counters {
            events_lost: sum(Counter::EventsLost),
            resets_sent: sum(Counter::ResetsSent),
            resets_received: sum(Counter::ResetsReceived),
            resets_filtered_out: sum(Counter::ResetsFilteredOut),
            resets_aggregated: sum(Counter::ResetsAggregated),
            latency_histograms: sum(Counter::LatencyHistograms),
            connects_refused: sum(Counter::ConnectsRefused),
        })
    }

    /// The slots of a per-CPU array of counters, summed over the CPUs.
    fn sums(&self, name: &str, slots: u32) -> Result<Vec<u64>> {
        let map = self
            .ebpf
            .map(name)
            .with_context(|| format!("map {name} missing"))?;
        per_cpu_sums(map, slots).with_context(|| format!("map {name}"))
    }
}

impl ListenerProbes for Session {
    fn requested_backlog(&self, pid: u32, fd: u32) -> Option<i32> {
        let map = self.ebpf.map(LISTEN_BACKLOGS)?;
        let backlogs: AyaHashMap<_, ListenCall, u32> = AyaHashMap::try_from(map).ok()?;
        backlogs
            .get(&ListenCall { pid, fd }, 0)
            .ok()
            .map(|b| b as i32)
    }

    fn synack_retransmits(&self) -> HashMap<(u64, SocketAddr), SynAckSeen> {
        self.per_listener(SYNACK_RETRANSMITS, |values: &[SynAckRetransmits]| {
            // The CPU that counted most holds a recent sample client.
            let sample = values
                .iter()
                .max_by_key(|v| v.count)
                .copied()
                .unwrap_or(values[0]);
            SynAckRetransmits {
                count: values.iter().map(|v| v.count).sum(),
                ..sample
            }
        })
        .into_iter()
        .map(|((ns, local), v)| {
            let remote = endpoint::from_raw(&v.remote_addr, v.remote_port, !local.is_ipv4());
            (
                (ns, local),
                SynAckSeen {
                    count: v.count,
                    remote,
                },
            )
        })
        .collect()
    }

    fn state_changes(&self) -> Option<StateChanges> {
        if !self.attached(catalog::SET_STATE.name) {
            return None;
        }
        let counts = self.sums(STATE_TRANSITIONS, TCP_STATES * TCP_STATES).ok()?;
        let slot = |from: u8, to: u8| (u32::from(from) * TCP_STATES + u32::from(to)) as usize;
        Some(StateChanges {
            all: counts.iter().sum(),
            listeners: counts[slot(tcp_state::CLOSE, tcp_state::LISTEN)]
                + counts[slot(tcp_state::LISTEN, tcp_state::CLOSE)],
        })
    }

    fn listener_arrivals(&self) -> Option<u64> {
        let counting = [
            catalog::CONN_REQUEST,
            catalog::V4_SYN_RECV_SOCK,
            catalog::V6_SYN_RECV_SOCK,
        ]
        .iter()
        .all(|hook| self.attached(hook.name));
        counting.then(|| self.sums(LISTENER_ARRIVALS, 1).ok()?.first().copied())?
    }

    fn listen_overflows(&self) -> Option<HashMap<(u64, SocketAddr), ListenOverflows>> {
        self.attached(catalog::CONN_REQUEST.name).then(|| {
            self.per_listener(LISTEN_OVERFLOWS, |values: &[ListenOverflows]| {
                // CPUs that never saw an overflow hold zeros: the largest value of each field
                // over the CPUs is the listener's.
                let max = |field: fn(&ListenOverflows) -> u32| {
                    values.iter().map(field).max().unwrap_or(0)
                };
                ListenOverflows {
                    syn_accept_queue_full: values.iter().map(|v| v.syn_accept_queue_full).sum(),
                    ack_accept_queue_full: values.iter().map(|v| v.ack_accept_queue_full).sum(),
                    syn_queue_full: values.iter().map(|v| v.syn_queue_full).sum(),
                    queue_len: max(|v| v.queue_len),
                    queue_limit: max(|v| v.queue_limit),
                    half_open: max(|v| v.half_open),
                    _pad: 0,
                }
            })
        })
    }
}

impl Session {
    /// Whether the probe on `hook` attached.
    fn attached(&self, hook: &str) -> bool {
        self.probes.iter().any(|p| p.attached && p.name == hook)
    }

    /// Sums a per-CPU map keyed by listener into (namespace, endpoint) → value.
    fn per_listener<V: aya::Pod>(
        &self,
        map: &str,
        merge: impl Fn(&[V]) -> V,
    ) -> HashMap<(u64, SocketAddr), V> {
        let Some(map) = self.ebpf.map(map) else {
            return HashMap::new();
        };
        let Ok(per_cpu) = PerCpuHashMap::<_, ListenerId, V>::try_from(map) else {
            return HashMap::new();
        };
        per_cpu
            .iter()
            .filter_map(Result::ok)
            .map(|(id, values)| {
                let local = endpoint::from_raw(&id.addr, id.port, id.family == AF_INET6);
                ((u64::from(id.netns), local), merge(&values))
            })
            .collect()
    }
}

fn decode_reset(bytes: &[u8], into: &RefCell<Vec<Observed>>) {
    match Reset::decode(bytes) {
        Ok(reset) => into.borrow_mut().push(Observed::Reset(reset)),
        Err(err) => tracing::warn!("skipping an undecodable event: {err:#}"),
    }
}

fn decode_failure(bytes: &[u8], into: &RefCell<Vec<Observed>>) {
    match ConnectFailed::decode(bytes) {
        Ok(failed) => into.borrow_mut().push(Observed::ConnectFailed(failed)),
        Err(err) => tracing::warn!("skipping an undecodable event: {err:#}"),
    }
}

/// An event from the programs.
pub enum Observed {
    Reset(Reset),
    ConnectFailed(ConnectFailed),
}
