//! Every entry of a map, read a chunk per system call (`BPF_MAP_LOOKUP_BATCH`, Linux 5.6)
//! instead of two calls per entry (next key, then value) as aya's iterators do: the daemon
//! reads per-CPU arrays of 256 slots every second, and socket records by the thousand.

use std::os::fd::{AsFd, AsRawFd};

use aya::{Pod, maps::MapData};

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

/// Calls `each` with the keys of `map` and their values, until `each` has seen `enough` of them
/// or the map ends: `values_per_key` `V`s per key (the number of CPUs for a per-CPU map, whose
/// values the kernel rounds up to 8 bytes each; else 1). `chunk`: entries asked for per call;
/// grown when a hash bucket holds more.
pub fn for_each_entry<K: Pod, V: Pod>(
    map: &MapData,
    values_per_key: usize,
    mut chunk: u32,
    enough: usize,
    mut each: impl FnMut(&K, &[V]),
) -> std::io::Result<()> {
    let mut seen = 0;
    // SAFETY: `Pod` types are plain integers and arrays, valid for any bytes.
    let (zero_key, zero_value): (K, V) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // Where the kernel continues from: a hash map's bucket index (4 bytes), an array's last key
    // read (the key's size).
    let cursor_bytes = size_of::<K>().max(size_of::<u32>());
    let mut cursor = vec![0u8; cursor_bytes];
    let mut next = vec![0u8; cursor_bytes];
    let mut first = true;
    let mut keys = vec![zero_key; chunk as usize];
    let mut values = vec![zero_value; chunk as usize * values_per_key];
    loop {
        keys.resize(chunk as usize, zero_key);
        values.resize(chunk as usize * values_per_key, zero_value);
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { cursor.as_mut_ptr() as u64 },
            out_batch: next.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk,
            map_fd: map.fd().as_fd().as_raw_fd() as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: the buffers hold `count` keys, `count * values_per_key` values and a cursor of
        // either size, and outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr,
                size_of::<BatchAttr>(),
            )
        };
        let err = (rc < 0).then(std::io::Error::last_os_error);
        match err.as_ref().and_then(std::io::Error::raw_os_error) {
            // A bucket holds more entries than were asked for: ask for more.
            Some(libc::ENOSPC) => {
                chunk *= 2;
                continue;
            }
            // ENOENT: the end of the map, where every read ends.
            None | Some(libc::ENOENT) => {}
            Some(_) => return Err(err.expect("an error code comes with an error")),
        }
        let read = attr.count as usize;
        for (i, key) in keys.iter().take(read).enumerate() {
            each(key, &values[i * values_per_key..(i + 1) * values_per_key]);
        }
        seen += read;
        if err.is_some() || seen >= enough {
            return Ok(());
        }
        cursor.copy_from_slice(&next);
        first = false;
    }
}
