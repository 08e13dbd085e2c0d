//! Reads the programs' ring buffer asynchronously.

use anyhow::Result;
use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

pub struct EventRing {
    fd: AsyncFd<RingBuf<MapData>>,
}

impl EventRing {
    pub fn new(ring: RingBuf<MapData>) -> Result<Self> {
        // SAFETY: the ring buffer owns its map fd, which stays open and unchanged until the
        // `AsyncFd` (and the ring inside it) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("registering the ring buffer with the runtime: {e}"))?;
        Ok(Self { fd })
    }

    /// Waits until events are ready, then hands each to `handle`.
    pub async fn drain(&mut self, mut handle: impl FnMut(&[u8])) -> Result<()> {
        let mut guard = self.fd.readable_mut().await?;
        let ring = guard.get_inner_mut();
        while let Some(item) = ring.next() {
            handle(&item);
        }
        guard.clear_ready();
        Ok(())
    }

    /// Hands over whatever is already in the buffer without waiting.
    pub fn drain_now(&mut self, mut handle: impl FnMut(&[u8])) {
        let ring = self.fd.get_mut();
        while let Some(item) = ring.next() {
            handle(&item);
        }
    }
}
