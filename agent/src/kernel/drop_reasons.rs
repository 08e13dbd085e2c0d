//! Names of the kernel's drop reasons (`enum skb_drop_reason`, Linux ≥ 5.17), as
//! `skb:kfree_skb` reports them.

use super::{btf::KernelBtf, enum_names::EnumNames};

/// Raw reason values and their names without the `SKB_DROP_REASON_` prefix (the two values that
/// are not drops, `SKB_NOT_DROPPED_YET` and `SKB_CONSUMED`, keep their names).
pub type DropReasons = EnumNames;

/// The drop without a reason: it and the values before it are not counted (see the programs).
pub const NOT_SPECIFIED: &str = "NOT_SPECIFIED";

/// A closing socket freeing what was still queued on it: not counted either.
pub const QUEUE_PURGE: &str = "QUEUE_PURGE";

/// A segment no socket wanted: not counted where the reset sent for it is seen.
pub const NO_SOCKET: &str = "NO_SOCKET";

/// The running kernel's drop reasons; empty on kernels that have none.
pub fn of_kernel(btf: &KernelBtf) -> DropReasons {
    EnumNames::from_btf(btf, "skb_drop_reason", "SKB_DROP_REASON_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_kernel_names_the_reasons_users_meet() {
        let reasons = of_kernel(&KernelBtf::from_sys_fs().unwrap());
        for name in [
            "NOT_SPECIFIED",
            "NETFILTER_DROP",
            "TCP_LISTEN_OVERFLOW",
            "SOCKET_RCVBUFF",
        ] {
            assert!(reasons.value(name).is_some(), "{name}");
        }
        // The values that are not drops sort before the reasonless drop, which the program's
        // filter relies on.
        let not_specified = reasons.value(NOT_SPECIFIED).unwrap();
        assert!(reasons.value("SKB_CONSUMED").unwrap() < not_specified);
    }

    #[test]
    fn this_kernel_has_every_explained_reason() {
        let reasons = of_kernel(&KernelBtf::from_sys_fs().unwrap());
        for explained in crate::model::drop_cause::EXPLAINED {
            let name = explained.id.to_ascii_uppercase();
            assert!(reasons.value(&name).is_some(), "Linux 6.18 has no {name}");
        }
    }
}
