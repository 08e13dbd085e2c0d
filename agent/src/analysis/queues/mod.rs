//! Listen-queue drops, per listener and per namespace.
//!
//! Where kernel function probes are allowed, drops are counted at their listener. Where they are
//! not (tracepoints only), the namespace's counters say how many handshakes were dropped and why
//! (ListenOverflows, TCPReqQFullDrop, TCPReqQFullDoCookies...), and frequent sock_diag samples say
//! which listener was full when they moved. Each finding states which method attributed it and
//! how certain that attribution is.

pub mod attribution;
pub mod conditions;
pub mod drops;
pub mod split;
