//! Every kernel hook tcpwhy probes, declared once: how it is named, how it can be attached (the
//! program for each method) and what it lets tcpwhy see. Attaching, coverage, the kernel layout,
//! the hook named in evidence and the README's probe table all come from here.

use std::sync::LazyLock;

use tcpwhy_common::{programs as program, reset::ResetOrigin};

use super::{capability::Capability, method::Method};

/// Where in the kernel a hook sits, with the program written for each way of attaching there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// A classic tracepoint (needs tracefs), some also reachable as a BTF tracepoint.
    Tracepoint {
        category: &'static str,
        event: &'static str,
        program: &'static str,
        btf_program: Option<&'static str>,
    },
    /// A kernel function (the hook's name), probed by fentry or kprobe.
    Function {
        fentry_program: &'static str,
        kprobe_program: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    /// How reports, metrics and evidence name it: `category:event`, or the function.
    pub name: &'static str,
    pub point: Point,
    pub capability: Capability,
}

/// One way of attaching at a hook: the program, and the kernel name it attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    Tracepoint {
        program: &'static str,
        category: &'static str,
        event: &'static str,
    },
    BtfTracepoint {
        program: &'static str,
        event: &'static str,
    },
    Fentry {
        program: &'static str,
        function: &'static str,
    },
    Kprobe {
        program: &'static str,
        function: &'static str,
    },
}

impl Hook {
    /// How to attach here by `method`, if the hook can be reached that way.
    pub fn attachment(&self, method: Method) -> Option<Attachment> {
        let function = self.name;
        match (self.point, method) {
            (
                Point::Tracepoint {
                    category,
                    event,
                    program,
                    ..
                },
                Method::Tracepoint,
            ) => Some(Attachment::Tracepoint {
                program,
                category,
                event,
            }),
            (
                Point::Tracepoint {
                    event, btf_program, ..
                },
                Method::TpBtf,
            ) => btf_program.map(|program| Attachment::BtfTracepoint { program, event }),
            (Point::Function { fentry_program, .. }, Method::Fentry) => Some(Attachment::Fentry {
                program: fentry_program,
                function,
            }),
            (Point::Function { kprobe_program, .. }, Method::Kprobe) => Some(Attachment::Kprobe {
                program: kprobe_program,
                function,
            }),
            _ => None,
        }
    }

    /// The methods that can reach it, in the default order of preference.
    pub fn methods(&self) -> impl Iterator<Item = Method> + '_ {
        Method::DEFAULT_ORDER
            .into_iter()
            .filter(|m| self.attachment(*m).is_some())
    }

    /// `(category, event)` of a tracepoint hook.
    pub fn tracepoint(&self) -> Option<(&'static str, &'static str)> {
        match self.point {
            Point::Tracepoint {
                category, event, ..
            } => Some((category, event)),
            Point::Function { .. } => None,
        }
    }

    pub fn is_function(&self) -> bool {
        matches!(self.point, Point::Function { .. })
    }
}

/// A tracepoint hook, named `category:event`.
macro_rules! tracepoint {
    ($category:literal, $event:literal, $program:expr, $btf_program:expr, $capability:expr) => {
        Hook {
            name: concat!($category, ":", $event),
            point: Point::Tracepoint {
                category: $category,
                event: $event,
                program: $program,
                btf_program: $btf_program,
            },
            capability: $capability,
        }
    };
}

/// A kernel-function hook, named after the function.
macro_rules! function {
    ($function:literal, $fentry_program:expr, $kprobe_program:expr, $capability:expr) => {
        Hook {
            name: $function,
            point: Point::Function {
                fentry_program: $fentry_program,
                kprobe_program: $kprobe_program,
            },
            capability: $capability,
        }
    };
}

pub const SEND_RESET: Hook = tracepoint!(
    "tcp",
    "tcp_send_reset",
    program::SEND_RESET_TRACEPOINT,
    Some(program::SEND_RESET_BTF),
    Capability::ResetsSent
);
pub const V4_SEND_RESET: Hook = function!(
    "tcp_v4_send_reset",
    program::V4_SEND_RESET_FENTRY,
    program::V4_SEND_RESET_KPROBE,
    Capability::ResetsSent
);
pub const V6_SEND_RESET: Hook = function!(
    "tcp_v6_send_reset",
    program::V6_SEND_RESET_FENTRY,
    program::V6_SEND_RESET_KPROBE,
    Capability::ResetsSent
);
pub const SEND_ACTIVE_RESET: Hook = function!(
    "tcp_send_active_reset",
    program::SEND_ACTIVE_RESET_FENTRY,
    program::SEND_ACTIVE_RESET_KPROBE,
    Capability::ResetsSent
);
pub const RECEIVE_RESET: Hook = tracepoint!(
    "tcp",
    "tcp_receive_reset",
    program::RECEIVE_RESET_TRACEPOINT,
    Some(program::RECEIVE_RESET_BTF),
    Capability::ResetsReceived
);
pub const SET_STATE: Hook = tracepoint!(
    "sock",
    "inet_sock_set_state",
    program::SET_STATE_TRACEPOINT,
    Some(program::SET_STATE_BTF),
    Capability::SocketOwners
);
pub const LISTEN: Hook = tracepoint!(
    "syscalls",
    "sys_enter_listen",
    program::LISTEN_TRACEPOINT,
    None,
    Capability::ListenBacklogs
);
pub const SYNACK: Hook = tracepoint!(
    "tcp",
    "tcp_retransmit_synack",
    program::SYNACK_TRACEPOINT,
    None,
    Capability::SynackRetransmits
);
pub const RETRANSMIT: Hook = tracepoint!(
    "tcp",
    "tcp_retransmit_skb",
    program::RETRANSMIT_TRACEPOINT,
    None,
    Capability::Retransmits
);
pub const CONN_REQUEST: Hook = function!(
    "tcp_conn_request",
    program::CONN_REQUEST_FENTRY,
    program::CONN_REQUEST_KPROBE,
    Capability::ExactQueueDrops
);
pub const V4_SYN_RECV_SOCK: Hook = function!(
    "tcp_v4_syn_recv_sock",
    program::V4_SYN_RECV_SOCK_FENTRY,
    program::V4_SYN_RECV_SOCK_KPROBE,
    Capability::ExactQueueDrops
);
pub const V6_SYN_RECV_SOCK: Hook = function!(
    "tcp_v6_syn_recv_sock",
    program::V6_SYN_RECV_SOCK_FENTRY,
    program::V6_SYN_RECV_SOCK_KPROBE,
    Capability::ExactQueueDrops
);
pub const LOSS_PROBE: Hook = function!(
    "tcp_send_loss_probe",
    program::LOSS_PROBE_FENTRY,
    program::LOSS_PROBE_KPROBE,
    Capability::TailLossProbes
);
pub const DROPS: Hook = tracepoint!(
    "skb",
    "kfree_skb",
    program::KFREE_SKB_TRACEPOINT,
    Some(program::KFREE_SKB_BTF),
    Capability::Drops
);
pub const NF_SEND_RESET: Hook = function!(
    "nf_send_reset",
    program::NF_SEND_RESET_FENTRY,
    program::NF_SEND_RESET_KPROBE,
    Capability::FirewallResets
);
pub const NF_SEND_RESET6: Hook = function!(
    "nf_send_reset6",
    program::NF_SEND_RESET6_FENTRY,
    program::NF_SEND_RESET6_KPROBE,
    Capability::FirewallResets
);

/// Every hook, in the order the attach report lists them.
pub const HOOKS: [&Hook; 16] = [
    &SEND_RESET,
    &V4_SEND_RESET,
    &V6_SEND_RESET,
    &SEND_ACTIVE_RESET,
    &RECEIVE_RESET,
    &SET_STATE,
    &LISTEN,
    &SYNACK,
    &RETRANSMIT,
    &CONN_REQUEST,
    &V4_SYN_RECV_SOCK,
    &V6_SYN_RECV_SOCK,
    &LOSS_PROBE,
    &DROPS,
    &NF_SEND_RESET,
    &NF_SEND_RESET6,
];

/// The hooks that provide `capability`, in catalog order.
pub fn serving(capability: Capability) -> impl Iterator<Item = &'static Hook> {
    HOOKS
        .into_iter()
        .filter(move |h| h.capability == capability)
}

/// The hook that saw a reset, as evidence names it; the send-reset tracepoint also says whether
/// it answered a segment or reset a connection on its own.
pub fn reset_origin_name(origin: ResetOrigin) -> &'static str {
    static SEND_RESET_CASES: LazyLock<[String; 2]> = LazyLock::new(|| {
        [
            format!("{} (reply)", SEND_RESET.name),
            format!("{} (active)", SEND_RESET.name),
        ]
    });
    match origin {
        ResetOrigin::SendResetReply => &SEND_RESET_CASES[0],
        ResetOrigin::SendResetActive => &SEND_RESET_CASES[1],
        ResetOrigin::V4SendReset => V4_SEND_RESET.name,
        ResetOrigin::V6SendReset => V6_SEND_RESET.name,
        ResetOrigin::SendActiveReset => SEND_ACTIVE_RESET.name,
        ResetOrigin::ReceiveReset => RECEIVE_RESET.name,
        ResetOrigin::NetfilterReset => "nf_send_reset (netfilter REJECT)",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use aya::programs::Program;
    use tcpwhy_common::layout::KernelLayout;

    use super::*;
    use crate::probes::load;

    #[test]
    fn names_are_unique() {
        let names: BTreeSet<&str> = HOOKS.iter().map(|h| h.name).collect();
        assert_eq!(names.len(), HOOKS.len());
    }

    #[test]
    fn every_capability_is_served() {
        for capability in Capability::ALL {
            assert!(serving(capability).next().is_some(), "{capability:?}");
        }
    }

    #[test]
    fn reset_origins_name_their_hook() {
        assert_eq!(
            reset_origin_name(ResetOrigin::SendResetReply),
            "tcp:tcp_send_reset (reply)"
        );
        assert_eq!(
            reset_origin_name(ResetOrigin::SendActiveReset),
            "tcp_send_active_reset"
        );
    }

    /// aya names programs after their functions in `agent-ebpf`: a renamed or added program
    /// must show up here, with the type its method needs.
    #[test]
    fn the_ebpf_object_has_exactly_the_catalog_programs() {
        let ebpf = load::load(&KernelLayout::UNKNOWN, None, load::EventFlow::default())
            .expect("loading the object");
        let mut expected = BTreeSet::new();
        for attachment in HOOKS
            .iter()
            .flat_map(|h| h.methods().filter_map(|m| h.attachment(m)))
        {
            let (name, is_typed): (_, fn(&Program) -> bool) = match attachment {
                Attachment::Tracepoint { program, .. } => {
                    (program, |p| matches!(p, Program::TracePoint(_)))
                }
                Attachment::BtfTracepoint { program, .. } => {
                    (program, |p| matches!(p, Program::BtfTracePoint(_)))
                }
                Attachment::Fentry { program, .. } => {
                    (program, |p| matches!(p, Program::FEntry(_)))
                }
                Attachment::Kprobe { program, .. } => {
                    (program, |p| matches!(p, Program::KProbe(_)))
                }
            };
            let program = ebpf.program(name).unwrap_or_else(|| panic!("no {name}"));
            assert!(
                is_typed(program),
                "{name} is not a program for {attachment:?}"
            );
            expected.insert(name);
        }
        let in_object: BTreeSet<&str> = ebpf.programs().map(|(name, _)| name).collect();
        assert_eq!(in_object, expected);
    }

    /// The README's "Probes" table lists every hook once, in catalog order, with its methods and
    /// capability (its last column, the role, is prose).
    #[test]
    fn readme_probe_table_matches_the_catalog() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let section = readme
            .split_once("\n## Probes\n")
            .and_then(|(_, rest)| rest.split("\n## ").next())
            .expect("a Probes section");
        let in_readme: Vec<(String, String, String)> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|row| {
                let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
                let (methods, capability) = (cells[1].to_string(), cells[2].replace('`', ""));
                cells[0]
                    .split(", ")
                    .map(|hook| hook.trim_matches('`').to_string())
                    .map(move |hook| (hook, methods.clone(), capability.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let from_catalog: Vec<(String, String, String)> = HOOKS
            .iter()
            .map(|h| {
                let methods: Vec<&str> = h.methods().map(Method::as_str).collect();
                (
                    h.name.to_string(),
                    methods.join(", "),
                    h.capability.as_str().to_string(),
                )
            })
            .collect();
        assert_eq!(in_readme, from_catalog);
    }
}
