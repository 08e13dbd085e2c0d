//! Address families as the kernel numbers them (`include/linux/socket.h`): the same on every
//! architecture, and what `sock_common.skc_family` and the programs' records hold.

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
