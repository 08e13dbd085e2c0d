//! Reading classic tracepoint records at offsets taken from tracefs.

use aya_ebpf::{EbpfContext, helpers::bpf_probe_read_kernel_buf, programs::TracePointContext};
use tcpwhy_common::layout::{ABSENT, KernelLayout};

use crate::layout::offset;

/// Reads a tracepoint field whose offset came from the running kernel's tracefs format.
#[inline(always)]
pub fn tracepoint_field<T>(
    ctx: &TracePointContext,
    field: fn(&KernelLayout) -> &u32,
) -> Result<T, i32> {
    let off = offset(field);
    if off == ABSENT {
        return Err(-1);
    }
    // SAFETY: the offset is inside the record: user space took it from the record's format.
    unsafe { ctx.read_at::<T>(off as usize) }
}

/// Copies `dst.len()` bytes of a tracepoint field (an address array).
#[inline(always)]
pub fn tracepoint_bytes(
    ctx: &TracePointContext,
    field: fn(&KernelLayout) -> &u32,
    dst: &mut [u8],
) -> Result<(), i32> {
    let off = offset(field);
    if off == ABSENT {
        return Err(-1);
    }
    let src = (ctx.as_ptr() as u64 + u64::from(off)) as *const u8;
    // SAFETY: as above; the helper checks the address and fails instead of faulting.
    unsafe { bpf_probe_read_kernel_buf(src, dst) }
}
