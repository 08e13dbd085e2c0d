//! The slots of a per-CPU array of counters, summed over the CPUs, read in one system call
//! (`BPF_MAP_LOOKUP_BATCH`, Linux 5.6) instead of one per slot: the daemon reads arrays of 256
//! slots every second, and a call per slot was most of its idle CPU.

use std::os::fd::{AsFd, AsRawFd};

use anyhow::{Context, Result, bail};
use aya::maps::{Map, MapData, PerCpuArray};

/// `enum bpf_cmd` in `include/uapi/linux/bpf.h`.
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// The `batch` member of `union bpf_attr`; the kernel takes a prefix of the union.
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Each of the first `slots` slots of `map`, summed over the CPUs.
pub fn per_cpu_sums(map: &Map, slots: u32) -> Result<Vec<u64>> {
    let Map::PerCpuArray(data) = map else {
        bail!("not a per-CPU array");
    };
    // Kernels without batch lookups on this map type answer EINVAL (before 5.6) or ENOTSUPP
    // (arrays on Debian's 5.10): read slot by slot there. A real failure shows there too.
    batch_sums(data, slots).or_else(|_| slot_by_slot(map, slots))
}

fn batch_sums(data: &MapData, slots: u32) -> std::io::Result<Vec<u64>> {
    let cpus = aya::util::nr_cpus().map_err(|(_, err)| err)?;
    let mut keys = vec![0u32; slots as usize];
    // A u64 per CPU per slot: the kernel rounds per-CPU values up to 8 bytes.
    let mut values = vec![0u64; slots as usize * cpus];
    let mut next: u32 = 0;
    let mut attr = BatchAttr {
        in_batch: 0,
        out_batch: std::ptr::from_mut(&mut next) as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: slots,
        map_fd: data.fd().as_fd().as_raw_fd() as u32,
        elem_flags: 0,
        flags: 0,
    };
    // SAFETY: the buffers hold `count` keys and `count * cpus` values and outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_BATCH,
            &mut attr,
            size_of::<BatchAttr>(),
        )
    };
    // ENOENT: the end of the array was reached, which is where every read ends.
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOENT) {
            return Err(err);
        }
    }
    let mut sums = vec![0u64; slots as usize];
    for (i, &key) in keys.iter().take(attr.count as usize).enumerate() {
        if let Some(sum) = sums.get_mut(key as usize) {
            *sum = values[i * cpus..(i + 1) * cpus].iter().sum();
        }
    }
    Ok(sums)
}

fn slot_by_slot(map: &Map, slots: u32) -> Result<Vec<u64>> {
    let array: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
    (0..slots)
        .map(|slot| Ok(array.get(&slot, 0)?.iter().sum()))
        .collect::<Result<_>>()
        .context("reading a per-CPU array")
}
