//! The report for people: findings grouped by cause, most frequent first.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    fmt::Write,
};

use super::report::Report;
use crate::{
    analysis::latency::{LatencyReport, Quantiles},
    model::{Finding, workload::Workload},
};

/// Rows of each latency list the text shows (the JSON report has more).
const LATENCY_ROWS: usize = 5;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let w = &report.window;
    let _ = writeln!(
        out,
        "tcpwhy: watched {:.1} s on Linux {}{}: {} resets sent, {} received{}{}",
        w.seconds,
        report.kernel.release,
        if w.interrupted { " (interrupted)" } else { "" },
        w.resets_sent,
        w.resets_received,
        if w.resets_filtered_out > 0 {
            format!(
                " ({} of them on other ports than --port, not examined)",
                w.resets_filtered_out
            )
        } else {
            String::new()
        },
        if w.resets_aggregated > 0 {
            format!(
                " ({} of them past the per-event rate, counted in the kernel by cause and \
                 service end, with one sample of the other end)",
                w.resets_aggregated
            )
        } else {
            String::new()
        },
    );
    let attached: Vec<String> = report
        .probes
        .iter()
        .filter(|p| p.attached)
        .map(|p| format!("{} ({})", p.name, method(p.method)))
        .collect();
    let _ = writeln!(out, "probes: {}", attached.join(", "));
    // Fallbacks that were not needed are normal; only real failures get a line each.
    let (standby, failed): (Vec<_>, Vec<_>) = report
        .probes
        .iter()
        .filter(|p| !p.attached)
        .partition(|p| p.standby);
    if !standby.is_empty() {
        let names: Vec<&str> = standby.iter().map(|p| p.name.as_str()).collect();
        let _ = writeln!(out, "  fallbacks on standby: {}", names.join(", "));
    }
    // Probes that failed for the same reason share a line.
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for probe in failed {
        let reason = probe.error.as_deref().unwrap_or("unknown");
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, names)) => names.push(&probe.name),
            None => by_reason.push((reason, vec![&probe.name])),
        }
    }
    for (reason, names) in by_reason {
        let _ = writeln!(out, "  not attached: {}: {reason}", names.join(", "));
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning: {}", printable(warning));
    }
    let _ = writeln!(out);
    latency_section(&mut out, &report.latency);

    if report.findings.is_empty() {
        let _ = writeln!(out, "No TCP resets were seen in this window.");
        return out;
    }
    for finding in &report.findings {
        let _ = writeln!(out, "{}", headline(finding));
        if let Some(reason) = &finding.kernel_reason {
            let _ = writeln!(out, "  kernel reason: {}", printable(reason));
        }
        let _ = writeln!(out, "  why: {}", printable(&finding.explanation));
        if let (Some(first), Some(last)) = (&finding.first_seen, &finding.last_seen) {
            let _ = writeln!(out, "  seen: {first} .. {last}");
        }
        if !finding.peers.is_empty() {
            let _ = writeln!(out, "  peers: {}", printable(&finding.peers.join(", ")));
        }
        for related in &finding.related {
            let _ = writeln!(
                out,
                "  related: [{}] {}{}{}",
                related.kind.as_str(),
                related.cause.id(),
                endpoint("local", &related.local),
                endpoint("remote", &related.remote),
            );
        }
        let evidence: Vec<String> = finding
            .evidence
            .iter()
            .filter(|(key, value)| key.as_str() != "rule" && !value.is_null())
            .map(|(key, value)| {
                let value = value
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| value.to_string());
                format!("{key}={}", printable(&value))
            })
            .collect();
        let _ = writeln!(out, "  evidence: {}", evidence.join(", "));
        let _ = writeln!(out, "  advice:");
        for advice in &finding.advice {
            let _ = writeln!(out, "    - {}", printable(advice));
        }
        let _ = writeln!(out);
    }
    out
}

/// The slowest destinations and listeners by p99, a few lines at most. An endpoint listed in
/// more than one namespace (127.0.0.1 in every container) says which one each row is.
fn latency_section(out: &mut String, latency: &LatencyReport) {
    let rows: Vec<(&str, String, u64, u64, &Quantiles)> = latency
        .connects
        .iter()
        .map(|r| {
            (
                "connect to",
                r.remote.to_string(),
                r.namespace,
                r.connects,
                &r.quantiles,
            )
        })
        .take(LATENCY_ROWS)
        .chain(
            latency
                .accepts
                .iter()
                .map(|r| {
                    let listener = r.listener.to_string();
                    ("accept on", listener, r.namespace, r.connects, &r.quantiles)
                })
                .take(LATENCY_ROWS),
        )
        .chain(
            latency
                .srtt_at_close
                .iter()
                .map(|r| {
                    let remote = r.remote.to_string();
                    (
                        "srtt at close,",
                        remote,
                        r.namespace,
                        r.connections,
                        &r.quantiles,
                    )
                })
                .take(LATENCY_ROWS),
        )
        .collect();
    let mut namespaces_of: HashMap<(&str, &str), HashSet<u64>> = HashMap::new();
    for (what, endpoint, namespace, ..) in &rows {
        namespaces_of
            .entry((what, endpoint))
            .or_default()
            .insert(*namespace);
    }
    let rows = rows.iter().map(|(what, endpoint, namespace, count, q)| {
        let shared = namespaces_of[&(*what, endpoint.as_str())].len() > 1;
        let endpoint = if shared {
            format!("{endpoint} (netns {namespace})")
        } else {
            endpoint.clone()
        };
        (what, endpoint, count, q)
    });
    let mut any = false;
    for (what, endpoint, count, q) in rows {
        if !any {
            let _ = writeln!(out, "latency (slowest p99 first):");
            any = true;
        }
        let Quantiles {
            p50_ms,
            p99_ms,
            max_ms,
        } = q;
        let _ = writeln!(
            out,
            "  {what} {endpoint} ×{count}: p50 {p50_ms} ms, p99 {p99_ms} ms, max {max_ms} ms"
        );
    }
    for note in &latency.unmeasured {
        let _ = writeln!(out, "latency: {note}");
    }
    if any || !latency.unmeasured.is_empty() {
        let _ = writeln!(out);
    }
}

/// `[kind] cause ×count  local …  remote …  process …`: a finding in one line.
pub fn headline(finding: &Finding) -> String {
    let process = finding
        .process
        .as_ref()
        .map(|p| {
            format!(
                "  process {} (pid {}{})",
                printable(&p.comm),
                p.pid,
                runs_in(&p.workload)
            )
        })
        .unwrap_or_default();
    format!(
        "[{}] {} ×{}{}{}{}",
        finding.kind.as_str(),
        finding.cause.id(),
        finding.count,
        endpoint("local", &finding.local),
        endpoint("remote", &finding.remote),
        process
    )
}

/// ", pod shop/web-0, container 3f2a…(containerd)": what people call where a process runs.
fn runs_in(workload: &Workload) -> String {
    let mut parts = Vec::new();
    if let Some(pod) = &workload.pod {
        parts.push(format!("pod {}", pod.qualified_name()));
    }
    if let Some(container) = &workload.container {
        parts.push(format!(
            "container {} ({})",
            container.short_id(),
            container.runtime.as_str()
        ));
    } else if let Some(unit) = &workload.unit {
        parts.push(format!("unit {unit}"));
    }
    parts
        .iter()
        .map(|p| format!(", {}", printable(p)))
        .collect()
}

fn endpoint(label: &str, value: &Option<String>) -> String {
    value
        .as_ref()
        .map(|v| format!("  {label} {}", printable(v)))
        .unwrap_or_default()
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): process names, and the explanations
/// and evidence that quote them, are chosen by any local user, and must not break the report's
/// lines or send escape sequences to the terminal of whoever reads it.
fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

fn method(method: Option<crate::probes::method::Method>) -> &'static str {
    method.map(|m| m.as_str()).unwrap_or("-")
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tcpwhy_common::latency::{LatencyHistogram, LatencyKind, bucket_of};

    use super::{latency_section, printable};
    use crate::analysis::latency::{LatencyReport, Measured};

    #[test]
    fn an_endpoint_in_several_namespaces_says_which_each_row_is() {
        let connect = |netns: u64, to: [u8; 4], us: u64| {
            let mut histogram = LatencyHistogram::EMPTY;
            histogram.buckets[bucket_of(us)] = 1;
            histogram.max_us = us;
            histogram.sum_us = us;
            Measured {
                kind: LatencyKind::Connect,
                netns,
                endpoint: SocketAddr::from((to, 5432)),
                histogram,
            }
        };
        let report = LatencyReport::new(
            &[
                connect(7, [127, 0, 0, 1], 900),
                connect(9, [127, 0, 0, 1], 800),
                connect(7, [10, 0, 0, 1], 700),
            ],
            0,
            Vec::new(),
        );
        let mut out = String::new();
        latency_section(&mut out, &report);
        assert!(
            out.contains("connect to 127.0.0.1:5432 (netns 7) ×1"),
            "{out}"
        );
        assert!(
            out.contains("connect to 127.0.0.1:5432 (netns 9) ×1"),
            "{out}"
        );
        assert!(out.contains("connect to 10.0.0.1:5432 ×1"), "{out}");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("python3 ×3"), "python3 ×3");
        assert_eq!(printable("evil\n\x1b[31mroot"), "evil\\n\\u{1b}[31mroot");
        assert_eq!(printable("a\tb\u{9b}c"), "a\\tb\\u{9b}c");
    }
}
