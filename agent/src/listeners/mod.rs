//! Listening sockets: their accept queues, their half-open connections and their owners.

pub mod owner;
pub mod snapshot;
pub mod sock_diag;
