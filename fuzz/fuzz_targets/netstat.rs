//! `/proc/<pid>/net/netstat`: the TcpExt counters read, written back as the kernel writes them,
//! read the same, and counters never grow against themselves.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpwhy::parsers::TcpExt;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let counters = TcpExt::parse(text);
    assert!(!counters.growth_since(&counters).any());
    let (names, values): (Vec<&str>, Vec<String>) = counters
        .counters()
        .map(|(name, value)| (name, value.to_string()))
        .unzip();
    let rendered = format!(
        "IpExt: InNoRoutes\nIpExt: 0\nTcpExt: {}\nTcpExt: {}\n",
        names.join(" "),
        values.join(" ")
    );
    assert_eq!(TcpExt::parse(&rendered), counters, "{rendered}");
});
