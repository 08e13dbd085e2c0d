//! Names of the kernel's reset reasons (`enum sk_rst_reason`, Linux ≥ 6.10).

use super::{btf::KernelBtf, enum_names::EnumNames};

/// Raw reason values and their names without the `SK_RST_REASON_` prefix.
pub type ResetReasons = EnumNames;

/// The running kernel's reset reasons; empty on kernels that have none.
pub fn of_kernel(btf: &KernelBtf) -> ResetReasons {
    EnumNames::from_btf(btf, "sk_rst_reason", "SK_RST_REASON_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_kernel_names_no_socket() {
        let reasons = of_kernel(&KernelBtf::from_sys_fs().unwrap());
        // Linux ≥ 6.10 (these machines run 6.18) has the enum.
        assert!(reasons.value("NO_SOCKET").is_some());
        assert!(reasons.value("TCP_ABORT_ON_CLOSE").is_some());
    }
}
