//! High-water marks of the agent's bounded buffers, readable from another thread: the
//! fault-injection tests and the soak check them against the bounds the design promises.

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct Watermarks {
    /// Most bytes one connection held for an unfinished frame after a read was processed.
    input_buffered: AtomicUsize,
    /// Most bytes queued to one transport since its output last drained.
    output_queued: AtomicUsize,
    /// Most connections open at once (sessions, handshakes and closing ones).
    connections: AtomicUsize,
}

impl Watermarks {
    pub fn input_buffered(&self) -> usize {
        self.input_buffered.load(Ordering::Relaxed)
    }

    pub fn output_queued(&self) -> usize {
        self.output_queued.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub(super) fn saw_input(&self, bytes: usize) {
        self.input_buffered.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(super) fn saw_output(&self, bytes: usize) {
        self.output_queued.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(super) fn saw_connections(&self, count: usize) {
        self.connections.fetch_max(count, Ordering::Relaxed);
    }
}
