//! Loads the embedded eBPF object with the kernel layout written into it.

use anyhow::{Context, Result};
use aya::{Btf, Ebpf, EbpfLoader};
use tcpwhy_common::{
    layout::KernelLayout,
    maps::{EVENTS, LAYOUT_GLOBAL},
};

/// The programs, built by build.rs from `agent-ebpf`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tcpwhy"));

/// Parses the object and creates its maps. Programs are loaded one by one by the attach step,
/// since each has alternatives and a failure of one must not stop the others.
pub fn load(layout: &KernelLayout, btf: Option<&Btf>, ring_buffer_bytes: u32) -> Result<Ebpf> {
    EbpfLoader::new()
        .btf(btf)
        .map_max_entries(EVENTS, ring_buffer_bytes)
        .override_global(LAYOUT_GLOBAL, layout, true)
        .load(OBJECT)
        .context("loading the eBPF object (creating its maps) failed")
}
