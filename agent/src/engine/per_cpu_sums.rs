//! The slots of a per-CPU array of counters, summed over the CPUs, read in one system call
//! (`BPF_MAP_LOOKUP_BATCH`, Linux 5.6) instead of one per slot: the daemon reads arrays of 256
//! slots every second, and a call per slot was most of its idle CPU.

use anyhow::{Context, Result, bail};
use aya::maps::{Map, MapData, PerCpuArray};

use super::map_batch::for_each_entry;

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
    let mut sums = vec![0u64; slots as usize];
    for_each_entry::<u32, u64>(data, cpus, slots, slots as usize, |&slot, per_cpu| {
        if let Some(sum) = sums.get_mut(slot as usize) {
            *sum = per_cpu.iter().sum();
        }
    })?;
    Ok(sums)
}

fn slot_by_slot(map: &Map, slots: u32) -> Result<Vec<u64>> {
    let array: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
    (0..slots)
        .map(|slot| Ok(array.get(&slot, 0)?.iter().sum()))
        .collect::<Result<_>>()
        .context("reading a per-CPU array")
}
