//! A client's byte stream: TCP first, TLS (rustls) after the RDP security upgrade.
//!
//! Non-blocking throughout. Output waits in rustls (or, before TLS, in a small raw
//! buffer) until the socket takes it; the caller asks [`Transport::has_pending_output`]
//! before producing more, which is how a slow client lowers the frame rate instead of
//! growing memory.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::ServerConnection;

/// Bytes read from the socket per readiness event, so one client cannot starve the loop.
const READ_BUDGET: usize = 256 * 1024;
/// Unsent output a client may have waiting before it is disconnected: far above one turn's
/// screen output (the screen waits for the queue to drain), so only a client that sends but
/// never reads gets there.
pub const MAX_PENDING_OUTPUT: usize = 1024 * 1024;

pub struct Transport {
    socket: TcpStream,
    tls: Option<ServerConnection>,
    raw_out: Vec<u8>,
    peer_closed: bool,
    /// Plaintext queued since the output last drained (an upper bound on what waits).
    queued: usize,
    /// Bytes read from the socket so far (TLS records included).
    bytes_read: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// Nothing more to read for now.
    Drained,
    /// Read budget used; call again after other work.
    More,
    /// The peer closed its side.
    Closed,
}

impl Transport {
    pub fn new(socket: TcpStream) -> Self {
        Transport {
            socket,
            tls: None,
            raw_out: Vec::new(),
            peer_closed: false,
            queued: 0,
            bytes_read: 0,
        }
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Switches to TLS. `leftover` are bytes already read that belong to the TLS stream.
    pub fn start_tls(
        &mut self,
        config: Arc<rustls::ServerConfig>,
        leftover: &[u8],
    ) -> io::Result<()> {
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        // Large graphics writes would fail at the default 64 KiB; we bound output ourselves.
        tls.set_buffer_limit(None);
        let mut rest = leftover;
        while !rest.is_empty() {
            let n = tls.read_tls(&mut rest)?;
            if n == 0 {
                break;
            }
        }
        if !leftover.is_empty() {
            tls.process_new_packets().map_err(io::Error::other)?;
        }
        self.tls = Some(tls);
        Ok(())
    }

    /// Reads what the socket has into `plaintext` (decrypted once TLS is on).
    pub fn read(&mut self, plaintext: &mut Vec<u8>) -> io::Result<ReadStatus> {
        let mut total = 0;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if total >= READ_BUDGET {
                return Ok(ReadStatus::More);
            }
            let result = match self.tls.as_mut() {
                Some(tls) => tls.read_tls(&mut self.socket),
                None => self.socket.read(&mut buf),
            };
            let n = match result {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(ReadStatus::Closed);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStatus::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            self.bytes_read += n as u64;
            match self.tls.as_mut() {
                None => plaintext.extend_from_slice(&buf[..n]),
                Some(tls) => {
                    let state = match tls.process_new_packets() {
                        Ok(state) => state,
                        Err(e) => {
                            // Let the alert go out before the caller closes.
                            let _ = tls.write_tls(&mut self.socket);
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("tls: {e}"),
                            ));
                        }
                    };
                    let available = state.plaintext_bytes_to_read();
                    if available > 0 {
                        let start = plaintext.len();
                        plaintext.resize(start + available, 0);
                        tls.reader().read_exact(&mut plaintext[start..])?;
                    }
                    if state.peer_has_closed() {
                        self.peer_closed = true;
                        return Ok(ReadStatus::Closed);
                    }
                }
            }
        }
    }

    /// Queues bytes for the client. Nothing is written to the socket until [`flush`].
    ///
    /// [`flush`]: Transport::flush
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

    /// Writes as much queued output as the socket takes now.
    pub fn flush(&mut self) -> io::Result<()> {
        // Pre-TLS bytes (the negotiation response) always go first.
        while !self.raw_out.is_empty() {
            match self.socket.write(&self.raw_out) {
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
                match tls.write_tls(&mut self.socket) {
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

    /// Queues TLS close_notify (when TLS is on); flush, then shut the socket down.
    pub fn send_close_notify(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Ends our direction (FIN) and keeps reading until the peer closes.
    pub fn shutdown_write(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
    }

    pub fn shutdown(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}
