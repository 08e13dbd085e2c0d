//! `tcpwhy diagnose`: attach, watch for a while, then explain what was seen.

pub mod report;
pub mod text;
pub mod watch;
