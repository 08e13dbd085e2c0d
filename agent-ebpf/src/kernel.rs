//! Reading kernel memory at offsets resolved from BTF, in the two ways the verifier allows.

use aya_ebpf::helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_buf};
use tcpwhy_common::layout::{ABSENT, KernelLayout};

use crate::layout::offset;

pub type Field = fn(&KernelLayout) -> &u32;

/// How a program reads the kernel structs its pointers lead to.
///
/// Only `struct sock` (with its `sock_common`), `struct sk_buff`, `struct net_device`,
/// `struct net` and `struct pt_regs` fields are read through a `Memory`: [`Typed`] loads are
/// checked against the pointer's BTF type, and a `tcp_sock` or timewait field lies beyond
/// `struct sock`, so those are always read with [`read`].
pub trait Memory: Copy {
    /// Reads a `T` (1, 2, 4 or 8 bytes) at `base + offset_of(field)`, failing when the kernel has
    /// no such field.
    fn read<T: Copy>(self, base: u64, field: Field) -> Result<T, i32>;

    /// Copies an address (4 or 16 bytes) at `base + offset_of(field)`.
    fn read_address(self, base: u64, field: Field, dst: &mut [u8]) -> Result<(), i32>;
}

/// `bpf_probe_read_kernel`, one helper call per read: for programs whose pointers the verifier
/// sees as plain numbers (classic tracepoint records, kprobe registers).
#[derive(Clone, Copy)]
pub struct Probed;

/// Plain loads, for programs whose arguments the verifier knows the BTF types of (BTF
/// tracepoints, fentry) and for the pointers read from them. The JIT turns a fault into a zero
/// (`BPF_PROBE_MEM`), so a load costs what a load costs instead of a helper call: the reset and
/// state-change programs make ten to twenty of them per run.
#[derive(Clone, Copy)]
pub struct Typed;

/// The address of a field, or None when the base is null or the kernel has no such field.
#[inline(always)]
fn address_of(base: u64, field: Field) -> Option<u64> {
    let off = offset(field);
    if base == 0 || off == ABSENT {
        return None;
    }
    Some(base + u64::from(off))
}

impl Memory for Probed {
    #[inline(always)]
    fn read<T: Copy>(self, base: u64, field: Field) -> Result<T, i32> {
        read(base, field)
    }

    #[inline(always)]
    fn read_address(self, base: u64, field: Field, dst: &mut [u8]) -> Result<(), i32> {
        let addr = address_of(base, field).ok_or(-1)?;
        read_bytes_at(addr, dst)
    }
}

impl Memory for Typed {
    #[inline(always)]
    fn read<T: Copy>(self, base: u64, field: Field) -> Result<T, i32> {
        let addr = address_of(base, field).ok_or(-1)?;
        // SAFETY: the verifier checks the load against the BTF type of `base` at this constant
        // offset, and a fault reads as zero. Volatile: one load of exactly this size, never
        // merged with a neighbour's into a load that spans two members (which it would refuse).
        Ok(unsafe { core::ptr::read_volatile(addr as *const T) })
    }

    #[inline(always)]
    fn read_address(self, base: u64, field: Field, dst: &mut [u8]) -> Result<(), i32> {
        let addr = address_of(base, field).ok_or(-1)?;
        // SAFETY: as above; addresses are arrays of integers, which the verifier lets a load span.
        unsafe {
            if dst.len() == 4 {
                let word = core::ptr::read_volatile(addr as *const u32);
                dst.copy_from_slice(&word.to_ne_bytes());
            } else if dst.len() == 16 {
                let high = core::ptr::read_volatile(addr as *const u64);
                let low = core::ptr::read_volatile((addr + 8) as *const u64);
                dst[..8].copy_from_slice(&high.to_ne_bytes());
                dst[8..].copy_from_slice(&low.to_ne_bytes());
            }
        }
        Ok(())
    }
}

/// Reads a `T` at `base + offset_of(field)` with a helper call, failing when the kernel has no
/// such field: for fields outside `struct sock` (see [`Memory`]) and programs without types.
#[inline(always)]
pub fn read<T>(base: u64, field: Field) -> Result<T, i32> {
    let addr = address_of(base, field).ok_or(-1)?;
    // SAFETY: bpf_probe_read_kernel checks the address and fails instead of faulting.
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
pub fn socket_netns<M: Memory>(memory: M, sk: u64) -> u32 {
    match memory.read::<u64>(sk, |l| &l.skc_net) {
        Ok(net) => memory.read::<u32>(net, |l| &l.net_ns_inum).unwrap_or(0),
        Err(_) => 0,
    }
}

/// The namespace of the device a segment arrived on, for segments without a socket; 0 when
/// unreadable.
#[inline(always)]
pub fn device_netns<M: Memory>(memory: M, skb: u64) -> u32 {
    let Ok(dev) = memory.read::<u64>(skb, |l| &l.skb_dev) else {
        return 0;
    };
    match memory.read::<u64>(dev, |l| &l.dev_nd_net) {
        Ok(net) => memory.read::<u32>(net, |l| &l.net_ns_inum).unwrap_or(0),
        Err(_) => 0,
    }
}
