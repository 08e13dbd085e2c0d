//! Who owns a socket, as recorded by the programs in process context.
//!
//! A reset is often sent or received in softirq context, where the current task is whatever
//! happened to be running on that CPU. The programs therefore remember the owner of each socket
//! when it changes state in a system call (connect, listen, close), and look it up later.

/// The process that owned a socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Thread-group id (what users call the pid).
    pub pid: u32,
    /// How the owner was learned; one of the `OWNER_FROM_*` constants.
    pub source: u32,
    /// `comm` of the task, NUL padded.
    pub comm: [u8; 16],
}

impl Owner {
    /// No owner recorded (no `OWNER_FROM_*` source is 0). The programs pass this rather than an
    /// `Option<Owner>`, whose absent payload the compiler may copy uninitialised, which the
    /// verifier refuses.
    pub const UNKNOWN: Owner = Owner {
        pid: 0,
        source: 0,
        comm: [0; 16],
    };

    pub fn is_known(&self) -> bool {
        self.source != 0
    }
}

/// Recorded when the socket changed state in a system call (connect, listen, shutdown, close).
pub const OWNER_FROM_SYSCALL: u32 = 2;
/// An accepted socket inherits the owner of the listener it was accepted from.
pub const OWNER_FROM_LISTENER: u32 = 3;

/// Key of the listener-owner map: a listening port in one network namespace.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerKey {
    pub netns: u32,
    pub port: u16,
    pub _pad: u16,
}

/// A listen() call: the process and the descriptor it listened on.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenCall {
    pub pid: u32,
    pub fd: u32,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: both are `repr(C)` and made only of integers and byte arrays, without padding.
    unsafe impl aya::Pod for super::Owner {}
    unsafe impl aya::Pod for super::ListenerKey {}
    unsafe impl aya::Pod for super::ListenCall {}
}
