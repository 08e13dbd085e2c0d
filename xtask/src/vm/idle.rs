//! The idle daemon inside a guest: on kernels where the exact queue probes load, what it does
//! while nothing happens must not grow with the number of network namespaces. The guest runs
//! the daemon with no traffic at all, first alone, then with [`NAMESPACES`] namespaces holding a
//! listener each, and reports over each quiet window the daemon's CPU time and its read system
//! calls (`syscr` in `/proc/<pid>/io`): a namespace's `net/dev`, counters and sysctls are files,
//! so a per-namespace read shows there (socket dumps are netlink, and follow the same signals).

use std::path::Path;

use anyhow::{Context, Result, bail};

pub const NAMESPACES: usize = 50;
/// Each quiet window; long enough for the 10 ms ticks CPU time is counted in.
const WINDOW_SECONDS: u32 = 20;
/// Before a window: the daemon finds new namespaces, samples them, and counts their sockets (a
/// full dump every 10 s; once nothing changed between two counts, namespaces dumped before
/// that are dumped again) before it trusts them to be quiet.
const SETTLE_SECONDS: u32 = 35;
/// Reads the window with namespaces may make beyond the one without: less than one per
/// namespace over the whole window (one sample of every namespace would be 50).
const READS_MARGIN: u64 = 10;

/// The guest's shell for the idle measurement (busybox sh), printing `@@ IDLE` lines. The real
/// `ip` by its path: busybox's shell prefers its own applets, whose `ip` has no `netns`.
pub fn script(agent: &Path) -> String {
    let agent = agent.display();
    let ip = "/usr/sbin/ip";
    format!(
        r#"echo "@@ IDLE BEGIN"
{agent} daemon --listen 127.0.0.1:9977 --events off 2>/tmp/idle-daemon.log &
idle_pid=$!
waited=0
while ! grep -q "serving /metrics" /tmp/idle-daemon.log && [ $waited -lt 180 ]; do
  sleep 1; waited=$((waited + 1))
done
idle_look() {{
  echo "@@ IDLE $1 $2 $(cut -d' ' -f14,15 /proc/$idle_pid/stat) $(sed -n 's/^syscr: //p' /proc/$idle_pid/io) $(cut -d' ' -f1 /proc/uptime)"
}}
idle_window() {{
  sleep {SETTLE_SECONDS}
  idle_look $1 before
  sleep {WINDOW_SECONDS}
  idle_look $1 after
}}
idle_window 0
listeners=""
i=0
while [ $i -lt {NAMESPACES} ]; do
  {ip} netns add tcpwhy-idle-$i
  {ip} -n tcpwhy-idle-$i link set lo up
  {ip} netns exec tcpwhy-idle-$i nc -l -p 8080 </dev/null >/dev/null 2>&1 &
  listeners="$listeners $!"
  i=$((i + 1))
done
idle_window {NAMESPACES}
listening=0
i=0
while [ $i -lt {NAMESPACES} ]; do
  # Port 8080 (1F90) in state 0A, LISTEN; busybox's nc may listen on IPv6.
  found=$({ip} netns exec tcpwhy-idle-$i cat /proc/net/tcp /proc/net/tcp6 | grep -c ':1F90 0*:0000 0A ')
  listening=$((listening + found))
  i=$((i + 1))
done
echo "@@ IDLE LISTENERS $listening"
kill $listeners $idle_pid
wait $idle_pid
i=0
while [ $i -lt {NAMESPACES} ]; do {ip} netns delete tcpwhy-idle-$i; i=$((i + 1)); done
echo "@@ IDLE END"
"#
    )
}

/// One quiet window as the guest measured it.
#[derive(Debug, Clone, Copy)]
pub struct IdleWindow {
    pub namespaces: usize,
    /// Percent of one (emulated) core.
    pub cpu_percent: f64,
    /// Read system calls over the window.
    pub reads: u64,
}

/// A process's counters at one look: CPU ticks (user + system), read calls, uptime.
struct Look {
    ticks: u64,
    reads: u64,
    uptime: f64,
}

/// What the guest measured.
#[derive(Debug, Default)]
pub struct Idle {
    pub windows: Vec<IdleWindow>,
    /// Listeners found in the namespaces after the last window.
    pub listeners: usize,
}

/// The windows from a guest's console; none when the guest did not run the measurement.
pub fn parse(console: &str) -> Result<Idle> {
    let mut looks: Vec<(usize, String, Look)> = Vec::new();
    let mut listeners = 0;
    for line in console.lines() {
        let Some(rest) = line.trim().strip_prefix("@@ IDLE ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let [namespaces, when, utime, stime, reads, uptime] = fields[..] else {
            match fields[..] {
                ["BEGIN"] | ["END"] => {}
                ["LISTENERS", count] => listeners = count.parse()?,
                // A look whose process had gone prints empty fields.
                _ => bail!("an idle look is incomplete (did the daemon exit?): {line}"),
            }
            continue;
        };
        let number = |text: &str| -> Result<u64> {
            text.parse().with_context(|| format!("idle look {line:?}"))
        };
        looks.push((
            namespaces.parse()?,
            when.to_string(),
            Look {
                ticks: number(utime)? + number(stime)?,
                reads: number(reads)?,
                uptime: uptime.parse()?,
            },
        ));
    }
    // USER_HZ: what /proc/<pid>/stat counts CPU time in.
    const TICKS_PER_SECOND: f64 = 100.0;
    let windows = looks
        .chunks(2)
        .map(|pair| match pair {
            [(namespaces, first, before), (same, second, after)]
                if first == "before" && second == "after" && namespaces == same =>
            {
                let seconds = after.uptime - before.uptime;
                Ok(IdleWindow {
                    namespaces: *namespaces,
                    cpu_percent: (after.ticks - before.ticks) as f64 / TICKS_PER_SECOND * 100.0
                        / seconds,
                    reads: after.reads - before.reads,
                })
            }
            _ => bail!("idle looks out of order"),
        })
        .collect::<Result<_>>()?;
    Ok(Idle { windows, listeners })
}

/// The windows, for the log.
pub fn describe(idle: &Idle) -> String {
    idle.windows
        .iter()
        .map(|w| {
            format!(
                "{} namespaces: {:.2} % of a core, {} reads in {WINDOW_SECONDS} s",
                w.namespaces, w.cpu_percent, w.reads
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the measurement requires: both windows, a listener in every namespace, and no read
/// that scales with namespaces.
pub fn problem(idle: &Idle) -> Option<String> {
    let alone = idle.windows.iter().find(|w| w.namespaces == 0);
    let crowded = idle.windows.iter().find(|w| w.namespaces == NAMESPACES);
    let (Some(alone), Some(crowded)) = (alone, crowded) else {
        return Some(format!("the idle measurement did not complete: {idle:?}"));
    };
    if idle.listeners != NAMESPACES {
        return Some(format!(
            "the idle measurement found {} listeners in its {NAMESPACES} namespaces",
            idle.listeners
        ));
    }
    (crowded.reads > alone.reads + READS_MARGIN).then(|| {
        format!(
            "the idle daemon read more with {NAMESPACES} quiet namespaces than without ({})",
            describe(idle)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_read_from_the_console() {
        let console = "noise\n@@ IDLE BEGIN\n\
            @@ IDLE 0 before 100 50 1000 30.00\n\
            @@ IDLE 0 after 110 50 1010 50.00\n\
            @@ IDLE 50 before 200 60 2000 80.00\n\
            @@ IDLE 50 after 230 70 3100 100.00\n\
            @@ IDLE LISTENERS 50\n\
            @@ IDLE END\n";
        let idle = parse(console).unwrap();
        assert_eq!(idle.listeners, NAMESPACES);
        let windows = &idle.windows;
        assert_eq!(windows.len(), 2);
        assert!((windows[0].cpu_percent - 0.5).abs() < 1e-9);
        assert_eq!(windows[0].reads, 10);
        assert!((windows[1].cpu_percent - 2.0).abs() < 1e-9);
        assert_eq!(windows[1].reads, 1100);
        assert!(problem(&idle).unwrap().contains("read more"));
    }

    #[test]
    fn reads_that_do_not_grow_with_namespaces_pass() {
        let windows = vec![
            IdleWindow {
                namespaces: 0,
                cpu_percent: 1.0,
                reads: 30,
            },
            IdleWindow {
                namespaces: NAMESPACES,
                cpu_percent: 1.1,
                reads: 32,
            },
        ];
        let mut idle = Idle {
            windows,
            listeners: NAMESPACES,
        };
        assert_eq!(problem(&idle), None);
        idle.listeners = 0;
        assert!(problem(&idle).unwrap().contains("0 listeners"));
        idle.listeners = NAMESPACES;
        idle.windows.pop();
        assert!(problem(&idle).unwrap().contains("did not complete"));
    }
}
