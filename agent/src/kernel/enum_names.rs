//! Names of a kernel enum's values, read from the running kernel's BTF. Enums such as
//! `sk_rst_reason` and `skb_drop_reason` are not ABI: their numbering changes between releases,
//! so a table compiled in would name the wrong reason.

use std::collections::HashMap;

use super::btf::KernelBtf;

/// Raw values and their names, without the enum's common prefix.
#[derive(Debug, Clone, Default)]
pub struct EnumNames {
    names: HashMap<u32, String>,
}

impl EnumNames {
    /// Reads `enum name` from BTF; an empty table on kernels that do not have it.
    pub fn from_btf(btf: &KernelBtf, name: &str, prefix: &str) -> Self {
        let members = btf.enum_members(name).unwrap_or_default();
        Self::from_members(members, prefix)
    }

    pub fn from_members(members: impl IntoIterator<Item = (String, u32)>, prefix: &str) -> Self {
        let names = members
            .into_iter()
            .map(|(name, value)| {
                let short = name.strip_prefix(prefix).unwrap_or(&name).to_string();
                (value, short)
            })
            .collect();
        Self { names }
    }

    pub fn name(&self, value: u32) -> Option<&str> {
        self.names.get(&value).map(String::as_str)
    }

    /// The value of a name (without the prefix).
    pub fn value(&self, name: &str) -> Option<u32> {
        self.names
            .iter()
            .find_map(|(value, n)| (n == name).then_some(*value))
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_without_prefix_and_both_ways() {
        let reasons = EnumNames::from_members(
            [
                ("SK_RST_REASON_NOT_SPECIFIED".to_string(), 0),
                ("SK_RST_REASON_NO_SOCKET".to_string(), 1),
                ("UNPREFIXED".to_string(), 2),
            ],
            "SK_RST_REASON_",
        );
        assert_eq!(reasons.name(1), Some("NO_SOCKET"));
        assert_eq!(reasons.name(2), Some("UNPREFIXED"));
        assert_eq!(reasons.name(7), None);
        assert_eq!(reasons.value("NOT_SPECIFIED"), Some(0));
        assert_eq!(reasons.value("MISSING"), None);
    }
}
