//! Names of the kernel's reset reasons (`enum sk_rst_reason`, Linux ≥ 6.10).
//!
//! The enum's numbering is not ABI and has changed between releases, so the names are read from
//! the running kernel's BTF and never from a table compiled in.

use std::collections::HashMap;

use super::btf::KernelBtf;

const ENUM_NAME: &str = "sk_rst_reason";
const PREFIX: &str = "SK_RST_REASON_";

/// Maps raw reason values to their names without the `SK_RST_REASON_` prefix.
#[derive(Debug, Clone, Default)]
pub struct ResetReasons {
    names: HashMap<u32, String>,
}

impl ResetReasons {
    /// Reads the enum from BTF; an empty table on kernels that have no reset reasons.
    pub fn from_btf(btf: &KernelBtf) -> Self {
        let members = btf.enum_members(ENUM_NAME).unwrap_or_default();
        Self::from_members(members)
    }

    pub fn from_members(members: impl IntoIterator<Item = (String, u32)>) -> Self {
        let names = members
            .into_iter()
            .map(|(name, value)| {
                let short = name.strip_prefix(PREFIX).unwrap_or(&name).to_string();
                (value, short)
            })
            .collect();
        Self { names }
    }

    pub fn name(&self, value: u32) -> Option<&str> {
        self.names.get(&value).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_without_prefix() {
        let reasons = ResetReasons::from_members([
            ("SK_RST_REASON_NOT_SPECIFIED".to_string(), 0),
            ("SK_RST_REASON_NO_SOCKET".to_string(), 1),
        ]);
        assert_eq!(reasons.name(1), Some("NO_SOCKET"));
        assert_eq!(reasons.name(7), None);
    }

    #[test]
    fn running_kernel_names_no_socket() {
        let btf = KernelBtf::from_sys_fs().unwrap();
        let reasons = ResetReasons::from_btf(&btf);
        // Linux ≥ 6.10 (these machines run 6.18) has the enum.
        assert!(reasons.names.values().any(|n| n == "NO_SOCKET"));
        assert!(reasons.names.values().any(|n| n == "TCP_ABORT_ON_CLOSE"));
    }
}
