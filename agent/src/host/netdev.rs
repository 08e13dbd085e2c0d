//! Packets received by one namespace's interfaces (`/proc/<pid>/net/dev`): the cheapest sign
//! that anything at all reached the namespace. Its output is a few lines per interface, where
//! `netstat` prints every counter the kernel has.

use std::{fs::File, os::unix::fs::FileExt};

use anyhow::{Context, Result};

/// Opens the calling thread's namespace's `dev` file.
pub fn open_here() -> Result<File> {
    File::open("/proc/thread-self/net/dev").context("opening /proc/thread-self/net/dev")
}

/// Lines of a namespace with a few interfaces fit in one read; a longer file takes more.
const FIRST_READ: usize = 4096;

/// Packets received over every interface, re-read from an open `dev` file (it keeps the
/// namespace it was opened in). Read at offsets: this runs for every namespace at every sample.
pub fn received_packets(file: &File) -> Result<u64> {
    let mut text = vec![0; FIRST_READ];
    let mut len = 0;
    loop {
        let read = file
            .read_at(&mut text[len..], len as u64)
            .context("reading net/dev")?;
        len += read;
        if read == 0 || len < text.len() {
            break;
        }
        text.resize(text.len() * 2, 0);
    }
    Ok(parse_received(&String::from_utf8_lossy(&text[..len])))
}

/// Each interface's line is `name: rx_bytes rx_packets ...`, after two header lines.
fn parse_received(text: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .filter_map(|(_, counters)| counters.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_packets_are_summed_over_interfaces() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 84507630 1552870    0    0    0     0          0         0 84507630 1552870    0    0    0     0       0          0
  eth0: 1597750135   46037    0    0    0     0          0         0  2500758   33411    0    0    0     0       0          0
";
        assert_eq!(parse_received(text), 1552870 + 46037);
    }

    #[test]
    fn loopback_traffic_is_counted() {
        let file = open_here().unwrap();
        let before = received_packets(&file).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(received_packets(&file).unwrap() > before);
    }
}
