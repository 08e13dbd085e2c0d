//! The running kernel's release string.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct KernelInfo {
    pub release: String,
    /// Whether `/sys/kernel/btf/vmlinux` was readable.
    pub btf: bool,
    /// Whether the kernel names its reset reasons (`enum sk_rst_reason`, Linux ≥ 6.10).
    pub reset_reasons: bool,
}

pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
