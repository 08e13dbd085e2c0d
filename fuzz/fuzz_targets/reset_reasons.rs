//! The kernel's BTF, where the reset reasons' names come from (`enum sk_rst_reason`): any blob
//! parses or is refused without a panic, and every enumerator's value is named after it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpwhy::parsers::{KernelBtf, reset_reasons};

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = KernelBtf::from_bytes(data) else {
        return;
    };
    let members = btf.enum_members("sk_rst_reason").unwrap_or_default();
    let reasons = reset_reasons::of_kernel(&btf);
    assert_eq!(reasons.is_empty(), members.is_empty());
    for (_, value) in &members {
        let named = reasons.name(*value).expect("every value has a name");
        assert!(
            members.iter().any(|(member, v)| v == value
                && member.strip_prefix("SK_RST_REASON_").unwrap_or(member) == named),
            "{value} named {named:?}, not after one of its enumerators: {members:?}"
        );
    }
});
