//! Reading kernel memory at offsets resolved from BTF.

use aya_ebpf::helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_buf};
use tcpwhy_common::layout::{ABSENT, KernelLayout};

use crate::layout::offset;

/// Reads a `T` at `base + offset_of(field)`, failing when the kernel has no such field.
#[inline(always)]
pub fn read<T>(base: u64, field: fn(&KernelLayout) -> &u32) -> Result<T, i32> {
    let off = offset(field);
    if base == 0 || off == ABSENT {
        return Err(-1);
    }
    // SAFETY: bpf_probe_read_kernel checks the address and fails instead of faulting.
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T) }
}

/// Copies `dst.len()` bytes from `base + offset_of(field)`.
#[inline(always)]
pub fn read_bytes(base: u64, field: fn(&KernelLayout) -> &u32, dst: &mut [u8]) -> Result<(), i32> {
    let off = offset(field);
    if base == 0 || off == ABSENT {
        return Err(-1);
    }
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel_buf((base + off as u64) as *const u8, dst) }
}

/// Reads a `T` at an absolute kernel address.
#[inline(always)]
pub fn read_at<T>(addr: u64) -> Result<T, i32> {
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel(addr as *const T) }
}

/// Copies bytes from an absolute kernel address.
#[inline(always)]
pub fn read_bytes_at(addr: u64, dst: &mut [u8]) -> Result<(), i32> {
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel_buf(addr as *const u8, dst) }
}

/// The network namespace inode number of a socket, 0 when unreadable.
#[inline(always)]
pub fn socket_netns(sk: u64) -> u32 {
    match read::<u64>(sk, |l| &l.skc_net) {
        Ok(net) => read::<u32>(net, |l| &l.net_ns_inum).unwrap_or(0),
        Err(_) => 0,
    }
}

/// The namespace of the device a segment arrived on, for segments without a socket; 0 when
/// unreadable.
#[inline(always)]
pub fn device_netns(skb: u64) -> u32 {
    let Ok(dev) = read::<u64>(skb, |l| &l.skb_dev) else {
        return 0;
    };
    match read::<u64>(dev, |l| &l.dev_nd_net) {
        Ok(net) => read::<u32>(net, |l| &l.net_ns_inum).unwrap_or(0),
        Err(_) => 0,
    }
}
