//! Address families as the kernel numbers them (`include/linux/socket.h`, part of the ABI):
//! the `family` of sockets, tracepoint records and the keys both sides share.

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
