//! Loads the embedded eBPF object with the kernel layout written into it, and starts the kernel
//! side's log when asked for.

use std::os::fd::{AsRawFd, RawFd};

use anyhow::{Context, Result};
use aya::{Btf, Ebpf, EbpfLoader};
use aya_log::EbpfLogger;
use tcpwhy_common::{
    layout::KernelLayout,
    maps::{
        EVENT_PORT_GLOBAL, EVENTS, EVENTS_RING_BYTES, LAYOUT_GLOBAL, RECORDS_PER_WINDOW_GLOBAL,
    },
    reset::DEFAULT_RECORDS_PER_WINDOW,
};

/// The programs, built by build.rs from `agent-ebpf`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tcpwhy"));

/// aya-log's level that writes nothing. The level is read-only data fixed at load, so the
/// verifier sees every log statement's branch as dead and removes it: no cost at all.
const KERNEL_LOG_OFF: u8 = 0;

/// How resets flow from the programs to user space.
#[derive(Debug, Clone, Copy)]
pub struct EventFlow {
    /// Size of the event ring buffer (a power of two, at least a page).
    pub ring_buffer_bytes: u32,
    /// Only resets on this port go to the ring (see [`EVENT_PORT_GLOBAL`]).
    pub port: Option<u16>,
    /// Resets each CPU sends one by one per window (see [`RECORDS_PER_WINDOW_GLOBAL`]).
    pub records_per_window: u32,
}

impl Default for EventFlow {
    fn default() -> Self {
        Self {
            ring_buffer_bytes: EVENTS_RING_BYTES,
            port: None,
            records_per_window: DEFAULT_RECORDS_PER_WINDOW,
        }
    }
}

/// Parses the object and creates its maps. Programs are loaded one by one by the attach step,
/// since each has alternatives and a failure of one must not stop the others.
pub fn load(layout: &KernelLayout, btf: Option<&Btf>, flow: EventFlow) -> Result<Ebpf> {
    let log_level = if tracing::enabled!(tracing::Level::DEBUG) {
        aya_log::Level::Debug as u8
    } else {
        KERNEL_LOG_OFF
    };
    let mut ebpf = EbpfLoader::new()
        .btf(btf)
        .map_max_entries(EVENTS, flow.ring_buffer_bytes)
        .override_global(LAYOUT_GLOBAL, layout, true)
        .override_global(EVENT_PORT_GLOBAL, &flow.port.unwrap_or(0), true)
        .override_global(RECORDS_PER_WINDOW_GLOBAL, &flow.records_per_window, true)
        .override_global(aya_log::LEVEL, &log_level, true)
        .load(OBJECT)
        .context("loading the eBPF object (creating its maps) failed")?;
    if log_level != KERNEL_LOG_OFF {
        start_kernel_log(&mut ebpf);
    }
    Ok(ebpf)
}

/// Forwards the programs' diagnostics (`TCPWHY_LOG=debug`) to this process's log from a thread
/// of their own, for as long as the process lives.
fn start_kernel_log(ebpf: &mut Ebpf) {
    let started = EbpfLogger::init(ebpf)
        .map_err(anyhow::Error::from)
        .and_then(|mut logger| {
            std::thread::Builder::new()
                .name("ebpf-log".into())
                .spawn(move || {
                    while wait_readable(logger.as_raw_fd()) {
                        logger.flush();
                    }
                })
                .map_err(anyhow::Error::from)
        });
    if let Err(err) = started {
        tracing::debug!("the eBPF programs' log is not available: {err:#}");
    }
}

/// Blocks until `fd` has data; false when it cannot be waited on any more.
fn wait_readable(fd: RawFd) -> bool {
    let mut ready = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let polled = unsafe { libc::poll(&mut ready, 1, -1) };
    polled >= 0 || std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
}
