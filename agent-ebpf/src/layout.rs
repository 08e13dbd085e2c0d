//! The kernel layout written by user space before load.

use tcpwhy_common::layout::KernelLayout;

/// Filled in by the loader (`aya::EbpfLoader::set_global`). The default is never used by a
/// loaded program: the loader refuses to load without a resolved layout.
#[unsafe(no_mangle)]
static LAYOUT: KernelLayout = KernelLayout::UNKNOWN;

/// Reads one offset. The volatile read stops the compiler from folding the default value in:
/// the real value only exists after user space rewrites the read-only data.
#[inline(always)]
pub fn offset(field: fn(&KernelLayout) -> &u32) -> u32 {
    // SAFETY: `LAYOUT` is a valid, aligned static.
    unsafe { core::ptr::read_volatile(field(&LAYOUT)) }
}
