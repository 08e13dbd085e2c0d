//! Reading classic tracepoint records at offsets taken from tracefs.

use aya_ebpf::programs::TracePointContext;
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
