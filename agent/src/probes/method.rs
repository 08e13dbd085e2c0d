//! The ways a program can be attached, in the order tcpwhy prefers them by default.

use std::{fmt, str::FromStr};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Classic tracepoint: stable, needs tracefs; the kernel builds a trace record for each
    /// call before the program runs.
    Tracepoint,
    /// BTF-typed tracepoint: same hook, no tracefs, raw kernel arguments, no trace record:
    /// the cheaper of the two where BTF is there.
    TpBtf,
    /// fentry trampoline on a kernel function: needs BTF and a kernel that allows it.
    Fentry,
    /// kprobe on a kernel function: works almost everywhere, costs the most per call.
    Kprobe,
}

impl Method {
    pub const DEFAULT_ORDER: [Method; 4] = [
        Method::TpBtf,
        Method::Tracepoint,
        Method::Fentry,
        Method::Kprobe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Tracepoint => "tracepoint",
            Method::TpBtf => "tp_btf",
            Method::Fentry => "fentry",
            Method::Kprobe => "kprobe",
        }
    }

    pub fn is_function_probe(self) -> bool {
        matches!(self, Method::Fentry | Method::Kprobe)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::DEFAULT_ORDER
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("unknown probe method {s:?}: expected tracepoint, tp_btf, fentry or kprobe")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for method in Method::DEFAULT_ORDER {
            assert_eq!(method.as_str().parse::<Method>().unwrap(), method);
        }
        assert!("uprobe".parse::<Method>().is_err());
    }
}
