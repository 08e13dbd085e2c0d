//! The TCP counters of one namespace (`/proc/<pid>/net/netstat`, the `TcpExt:` lines that
//! `nstat` and node_exporter read).

use std::{
    collections::HashMap,
    fs::File,
    io::{Read, Seek, SeekFrom},
};

use anyhow::{Context, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpExt {
    values: HashMap<String, u64>,
}

impl TcpExt {
    /// Re-reads an open `netstat` file. The file keeps the namespace it was opened in, so a
    /// namespace is entered once to open it and never again to sample it.
    pub fn reread(file: &mut File) -> Result<Self> {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_string(&mut text).context("reading netstat")?;
        Ok(Self::parse(&text))
    }

    /// Opens the calling thread's namespace's `netstat`.
    pub fn open_here() -> Result<File> {
        File::open("/proc/thread-self/net/netstat").context("opening /proc/thread-self/net/netstat")
    }

    /// The file pairs a header line with a value line per group: `TcpExt: A B` / `TcpExt: 1 2`.
    pub fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let mut values = HashMap::new();
        while let (Some(names), Some(numbers)) = (lines.next(), lines.next()) {
            let (Some(names), Some(numbers)) = (
                names.strip_prefix("TcpExt:"),
                numbers.strip_prefix("TcpExt:"),
            ) else {
                continue;
            };
            for (name, number) in names.split_whitespace().zip(numbers.split_whitespace()) {
                if let Ok(number) = number.parse() {
                    values.insert(name.to_string(), number);
                }
            }
        }
        Self { values }
    }

    pub fn get(&self, name: &str) -> u64 {
        self.values.get(name).copied().unwrap_or(0)
    }

    /// Every counter read, in no particular order.
    pub fn counters(&self) -> impl Iterator<Item = (&str, u64)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), *value))
    }

    /// How much each queue counter grew since `earlier` (counters only grow; a reset reads 0).
    pub fn growth_since(&self, earlier: &TcpExt) -> CounterGrowth {
        let grown = |name: &str| self.get(name).saturating_sub(earlier.get(name));
        CounterGrowth {
            listen_overflows: grown("ListenOverflows"),
            listen_drops: grown("ListenDrops"),
            req_q_full_drop: grown("TCPReqQFullDrop"),
            req_q_full_do_cookies: grown("TCPReqQFullDoCookies"),
            syncookies_sent: grown("SyncookiesSent"),
            syncookies_failed: grown("SyncookiesFailed"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterGrowth {
    pub listen_overflows: u64,
    pub listen_drops: u64,
    pub req_q_full_drop: u64,
    pub req_q_full_do_cookies: u64,
    pub syncookies_sent: u64,
    pub syncookies_failed: u64,
}

impl CounterGrowth {
    pub fn any(&self) -> bool {
        *self != CounterGrowth::default()
    }

    /// SYN-queue drops or cookies were counted: the half-open counts are worth a dump.
    pub fn syn_queue_moved(&self) -> bool {
        self.req_q_full_drop > 0 || self.req_q_full_do_cookies > 0 || self.syncookies_sent > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops TCPReqQFullDoCookies TCPReqQFullDrop
TcpExt: 3 1 0 8 9 3 0
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
";

    #[test]
    fn parses_tcpext_and_ignores_other_groups() {
        let counters = TcpExt::parse(SAMPLE);
        assert_eq!(counters.get("ListenOverflows"), 8);
        assert_eq!(counters.get("ListenDrops"), 9);
        assert_eq!(counters.get("TCPReqQFullDoCookies"), 3);
        assert_eq!(counters.get("InNoRoutes"), 0);
        assert_eq!(counters.get("NoSuchCounter"), 0);
    }

    #[test]
    fn growth_is_per_counter_and_never_negative() {
        let before = TcpExt::parse(SAMPLE);
        let after = TcpExt::parse(&SAMPLE.replace("3 1 0 8 9 3 0", "5 1 0 10 12 3 0"));
        let growth = after.growth_since(&before);
        assert_eq!(growth.listen_overflows, 2);
        assert_eq!(growth.listen_drops, 3);
        assert_eq!(growth.syncookies_sent, 2);
        assert_eq!(growth.req_q_full_do_cookies, 0);
        assert!(growth.any());
        assert!(
            !before.growth_since(&after).any(),
            "a counter reset reads as no growth"
        );
    }

    #[test]
    fn reads_the_running_kernel_twice_from_one_open_file() {
        let mut file = TcpExt::open_here().unwrap();
        let first = TcpExt::reread(&mut file).unwrap();
        assert!(first.values.contains_key("ListenOverflows"));
        let second = TcpExt::reread(&mut file).unwrap();
        assert!(second.get("ListenOverflows") >= first.get("ListenOverflows"));
    }
}
