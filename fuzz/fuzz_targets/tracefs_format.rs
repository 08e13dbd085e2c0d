//! A tracefs `format` file: every field read is named by a C identifier, and the fields read, written back
//! in the kernel's own layout, read the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpwhy::parsers::RecordFormat;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let format = RecordFormat::parse(text);
    let mut rendered = String::from("format:\n");
    for (name, offset) in format.fields() {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "field name {name:?} from {text:?}"
        );
        rendered +=
            &format!("\tfield:unsigned int {name};\toffset:{offset};\tsize:4;\tsigned:0;\n");
    }
    assert_eq!(RecordFormat::parse(&rendered), format, "{rendered}");
});
