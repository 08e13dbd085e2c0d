//! Listen-queue drops, per listener and per namespace.
//!
//! Where kernel function probes are allowed, drops could be seen one by one. Where they are not
//! (tracepoints only, as on these machines), the namespace's counters say how many handshakes
//! were dropped and why (ListenOverflows, TCPReqQFullDrop, TCPReqQFullDoCookies...), and frequent
//! sock_diag samples say which listener was full when they moved. Each finding states which
//! method attributed it and how certain that attribution is.

pub mod drops;
pub mod kernel_view;
pub mod watch;
