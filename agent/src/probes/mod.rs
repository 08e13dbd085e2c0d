//! Loading the eBPF object and attaching its programs, each through a fallback chain of methods.
//! Which hooks exist, and what each is for, is the catalog's.

pub mod attach;
pub mod attach_error;
pub mod capability;
pub mod catalog;
pub mod coverage;
pub mod load;
pub mod method;
pub mod privileges;
pub mod report;
