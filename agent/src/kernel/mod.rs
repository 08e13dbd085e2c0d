//! What the running kernel is: its BTF, tracepoint formats, reset- and drop-reason names and
//! sysctls.
//! Nothing about the kernel's layout is compiled in; it is all read here at start-up.

pub mod btf;
pub mod drop_reasons;
pub mod enum_names;
pub mod layout;
pub mod memlock;
pub mod release;
pub mod reset_reasons;
pub mod sysctl;
pub mod tracefs;
