//! A client's byte stream without its socket: bytes in, plaintext out, and output waiting
//! to be written. Clear text first, TLS (rustls) after the RDP security upgrade.
//!
//! The caller owns the socket: it hands over what it read ([`Wire::receive`]) and gives a
//! writer when the socket may take more ([`Wire::write_to`]). Output waits here until then;
//! the caller asks [`Wire::has_pending_output`] before producing more, which is how a slow
//! client lowers the frame rate instead of growing memory.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::ServerConnection;

/// Unsent output a client may have waiting before it is disconnected: far above one turn's
/// screen output (the screen waits for the queue to drain), so only a client that sends but
/// never reads gets there.
pub const MAX_PENDING_OUTPUT: usize = 1024 * 1024;

#[derive(Default)]
pub struct Wire {
    tls: Option<ServerConnection>,
    /// Clear-text output (the negotiation response): always written before any TLS record.
    raw_out: Vec<u8>,
    peer_closed: bool,
    /// Plaintext queued since the output last drained (an upper bound on what waits).
    queued: usize,
    /// Bytes received so far (TLS records included).
    bytes_read: u64,
}

impl Wire {
    pub fn new() -> Self {
        Wire::default()
    }

    /// Switches to TLS. `leftover` are bytes already received that belong to the TLS stream.
    pub fn start_tls(
        &mut self,
        config: Arc<rustls::ServerConfig>,
        leftover: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> io::Result<()> {
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        // Large graphics writes would fail at the default 64 KiB; we bound output ourselves.
        tls.set_buffer_limit(None);
        self.tls = Some(tls);
        self.decrypt(leftover, plaintext)
    }

    /// Takes bytes read from the socket; what they carry goes to `plaintext`. A TLS error
    /// leaves its alert queued, to go out before the caller closes.
    pub fn receive(&mut self, bytes: &[u8], plaintext: &mut Vec<u8>) -> io::Result<()> {
        self.bytes_read += bytes.len() as u64;
        if self.tls.is_none() {
            plaintext.extend_from_slice(bytes);
            return Ok(());
        }
        self.decrypt(bytes, plaintext)
    }

    fn decrypt(&mut self, mut bytes: &[u8], plaintext: &mut Vec<u8>) -> io::Result<()> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        while !bytes.is_empty() {
            // rustls takes at most what its buffer holds: process, then give it the rest.
            let n = tls.read_tls(&mut bytes)?;
            let state = tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("tls: {e}")))?;
            let available = state.plaintext_bytes_to_read();
            if available > 0 {
                let start = plaintext.len();
                plaintext.resize(start + available, 0);
                tls.reader().read_exact(&mut plaintext[start..])?;
            }
            if state.peer_has_closed() {
                self.peer_closed = true;
                return Ok(());
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The peer closed its side (end of stream on the socket).
    pub fn set_peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// Queues bytes for the client; they leave at the next [`write_to`](Wire::write_to).
    pub fn queue(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.queued.saturating_add(bytes.len()) > MAX_PENDING_OUTPUT {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("more than {MAX_PENDING_OUTPUT} bytes unsent: the client does not read"),
            ));
        }
        self.queued += bytes.len();
        match self.tls.as_mut() {
            Some(tls) => tls.writer().write_all(bytes),
            None => {
                self.raw_out.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Writes as much waiting output as `socket` takes now (`WouldBlock` is not an error).
    pub fn write_to(&mut self, socket: &mut dyn Write) -> io::Result<()> {
        while !self.raw_out.is_empty() {
            match socket.write(&self.raw_out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.raw_out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(tls) = self.tls.as_mut() {
            while tls.wants_write() {
                match tls.write_tls(socket) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.queued = 0;
        Ok(())
    }

    /// Everything still waiting, for a last best-effort write as the connection is dropped.
    pub fn take_pending(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.raw_out);
        let _ = self.write_to(&mut out);
        out
    }

    /// Bytes queued since the output last drained completely (0 when nothing waits).
    pub fn queued_since_drained(&self) -> usize {
        self.queued
    }

    pub fn has_pending_output(&self) -> bool {
        !self.raw_out.is_empty() || self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Queues TLS close_notify (when TLS is on).
    pub fn send_close_notify(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes `room` bytes, then would block.
    struct Narrow {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Narrow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_waits_for_a_socket_that_blocks_and_is_bounded() {
        let mut wire = Wire::new();
        wire.queue(b"hello world").unwrap();
        let mut socket = Narrow {
            taken: Vec::new(),
            room: 5,
        };
        wire.write_to(&mut socket).unwrap();
        assert_eq!(socket.taken, b"hello");
        assert!(wire.has_pending_output());
        assert_eq!(wire.queued_since_drained(), 11);
        socket.room = 100;
        wire.write_to(&mut socket).unwrap();
        assert_eq!(socket.taken, b"hello world");
        assert!(!wire.has_pending_output());
        assert_eq!(wire.queued_since_drained(), 0);
        // A client that never reads reaches the bound and is told so.
        let big = vec![0u8; MAX_PENDING_OUTPUT];
        wire.queue(&big).unwrap();
        let err = wire.queue(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn an_empty_client_hello_is_an_error_with_an_alert_to_send() {
        let identity = crate::net::Identity::generate(crate::net::KeyType::Ecdsa).unwrap();
        let config = identity.server_config().unwrap();
        let mut wire = Wire::new();
        wire.queue(b"clear response").unwrap();
        let mut plaintext = Vec::new();
        wire.start_tls(config, &[], &mut plaintext).unwrap();
        let err = wire
            .receive(&[0x16, 3, 1, 0, 4, 1, 0, 0, 0], &mut plaintext)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(plaintext.is_empty());
        // The clear-text response leaves first, then the TLS alert.
        let out = wire.take_pending();
        assert!(out.starts_with(b"clear response"));
        assert_eq!(
            out[b"clear response".len()],
            0x15,
            "an alert record follows"
        );
    }
}
