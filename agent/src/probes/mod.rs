//! Loading the eBPF object and attaching its programs, each through a fallback chain of methods.

pub mod attach;
pub mod coverage;
pub mod load;
pub mod method;
pub mod privileges;
pub mod report;
