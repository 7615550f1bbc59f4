//! The control socket's mio side: a listener, at most [`MAX_CLIENTS`] peers, each with a
//! capped line reader and a capped output queue. Non-blocking; the agent calls `ready`
//! for the tokens it owns, acts on the requests it gets back, and answers with `reply`.
//!
//! Tokens: `base` is the listener, `base + 1 ..= base + MAX_CLIENTS` the peers, so the
//! agent reserves a fixed range below its RDP client tokens.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use std::os::fd::AsFd;

use super::auth::{LocalUser, PeerCred, authorize};
use super::lines::{LineReader, MAX_LINE};
use super::reply;
use super::request::Request;
use crate::{debug, info};

/// Peers at once; more are refused with an error line. A UI, a watcher and a few CLI
/// calls fit easily.
pub const MAX_CLIENTS: usize = 8;
/// Output queued for one peer; a watcher that stops reading is dropped past this.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// One peer, valid while it stays connected (the generation tells a reused slot apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientId {
    slot: usize,
    generation: u64,
}

/// An authorized request for the agent to carry out and answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub client: ClientId,
    pub peer: PeerCred,
    pub request: Request,
}

struct Client {
    stream: UnixStream,
    peer: PeerCred,
    generation: u64,
    reader: LineReader,
    out: Vec<u8>,
    watching: bool,
    /// Registered as the thin client's prompt (a watcher that shows consent requests).
    prompting: bool,
    /// The peer shut its writing side: it goes once its replies are out.
    eof: bool,
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    base: usize,
    local: LocalUser,
    clients: Vec<Option<Client>>,
    generation: u64,
}

impl Server {
    /// Binds `path` (a stale socket file from a previous run is replaced) and registers it.
    /// The file is world-connectable on purpose: SO_PEERCRED decides, and a umask must not
    /// lock the local user's UI out.
    pub fn bind(
        path: &Path,
        registry: &Registry,
        base: Token,
        local: LocalUser,
    ) -> io::Result<Server> {
        match std::fs::remove_file(path) {
            Ok(()) => debug!("control: replaced a stale {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        registry.register(&mut listener, base, Interest::READABLE)?;
        Ok(Server {
            listener,
            path: path.to_owned(),
            base: base.0,
            local,
            clients: (0..MAX_CLIENTS).map(|_| None).collect(),
            generation: 0,
        })
    }

    /// True for the listener's and the peers' tokens.
    pub fn owns(&self, token: Token) -> bool {
        (self.base..=self.base + MAX_CLIENTS).contains(&token.0)
    }

    /// Serves a readiness event; authorized requests are appended to `incoming`.
    pub fn ready(&mut self, registry: &Registry, token: Token, incoming: &mut Vec<Incoming>) {
        if token.0 == self.base {
            self.accept_all(registry);
            return;
        }
        let slot = token.0.wrapping_sub(self.base + 1);
        if slot >= MAX_CLIENTS {
            return;
        }
        let keep = match self.clients[slot].as_mut() {
            Some(client) => client.serve(slot, self.local, incoming),
            None => return,
        };
        if !keep {
            self.close(registry, slot);
        }
    }

    /// Answers one request (a line from `control::reply`). A gone peer is ignored.
    pub fn reply(&mut self, registry: &Registry, client: ClientId, line: &str) {
        let alive = match self.clients.get_mut(client.slot).and_then(Option::as_mut) {
            Some(c) if c.generation == client.generation => {
                c.send(line) && !(c.eof && !c.watching && c.out.is_empty())
            }
            _ => return,
        };
        if !alive {
            self.close(registry, client.slot);
        }
    }

    /// A UI is connected that said it shows the consent requests.
    pub fn has_prompt(&self) -> bool {
        self.clients.iter().flatten().any(|c| c.prompting)
    }

    /// Sends an event line to every watcher.
    pub fn broadcast(&mut self, registry: &Registry, line: &str) {
        for slot in 0..MAX_CLIENTS {
            let alive = match self.clients[slot].as_mut() {
                Some(c) if c.watching => c.send(line),
                _ => continue,
            };
            if !alive {
                debug!("control: dropping a watcher that does not read");
                self.close(registry, slot);
            }
        }
    }

    /// Peers connected now.
    pub fn clients(&self) -> usize {
        self.clients.iter().flatten().count()
    }

    /// Closes every peer and removes the socket file.
    pub fn shut_down(&mut self, registry: &Registry) {
        for slot in 0..MAX_CLIENTS {
            self.close(registry, slot);
        }
        let _ = registry.deregister(&mut self.listener);
        let _ = std::fs::remove_file(&self.path);
    }

    fn accept_all(&mut self, registry: &Registry) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("control: accept failed: {e}");
                    return;
                }
            };
            let peer = match super::peer::peer_cred(stream.as_fd(), self.local) {
                Ok(peer) => peer,
                Err(e) => {
                    debug!("control: no peer credentials: {e}");
                    continue;
                }
            };
            // Strangers get no slot, so they cannot crowd the local user's UI out.
            if !self.local.admits(peer) {
                info!("control: refused uid {} (pid {})", peer.uid, peer.pid);
                let _ =
                    stream.write(reply::error(&super::Denied::NotLocalUser.to_string()).as_bytes());
                continue;
            }
            let Some(slot) = self.clients.iter().position(Option::is_none) else {
                let _ = stream.write(reply::error("too many control connections").as_bytes());
                continue;
            };
            let token = Token(self.base + 1 + slot);
            if let Err(e) =
                registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            {
                debug!("control: cannot register a peer: {e}");
                continue;
            }
            self.generation += 1;
            self.clients[slot] = Some(Client {
                stream,
                peer,
                generation: self.generation,
                reader: LineReader::new(MAX_LINE),
                out: Vec::new(),
                watching: false,
                prompting: false,
                eof: false,
            });
        }
    }

    fn close(&mut self, registry: &Registry, slot: usize) {
        if let Some(mut client) = self.clients.get_mut(slot).and_then(Option::take) {
            let _ = client.flush();
            let _ = registry.deregister(&mut client.stream);
        }
    }
}

impl Client {
    /// Reads what is there, handles whole lines, flushes; false when the peer must go.
    fn serve(&mut self, slot: usize, local: LocalUser, incoming: &mut Vec<Incoming>) -> bool {
        let mut chunk = [0u8; 4096];
        let before = incoming.len();
        while !self.eof {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.reader.feed(&chunk[..n]);
                    if !self.handle_lines(slot, local, incoming) {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // A half-closed peer still gets its replies: keep it while any are due.
        self.flush() && !(self.eof && incoming.len() == before && self.out.is_empty())
    }

    /// False after a malformed or oversized line (its error reply is queued).
    fn handle_lines(
        &mut self,
        slot: usize,
        local: LocalUser,
        incoming: &mut Vec<Incoming>,
    ) -> bool {
        while let Some(line) = self.reader.next_line() {
            let request = match line
                .map_err(|e| e.to_string())
                .and_then(|l| Request::parse(&l).map_err(|e| e.to_string()))
            {
                Ok(request) => request,
                Err(message) => {
                    self.send(&reply::error(&message));
                    return false;
                }
            };
            if let Err(denied) = authorize(&request, self.peer, local) {
                if !self.send(&reply::error(&denied.to_string())) {
                    return false;
                }
                continue;
            }
            if matches!(request, Request::Watch | Request::Prompt) {
                self.watching = true;
            }
            if request == Request::Prompt {
                self.prompting = true;
            }
            incoming.push(Incoming {
                client: ClientId {
                    slot,
                    generation: self.generation,
                },
                peer: self.peer,
                request,
            });
        }
        true
    }

    /// Queues and writes; false when the peer is gone or its queue overflowed.
    fn send(&mut self, line: &str) -> bool {
        if self.out.len() + line.len() > MAX_OUTPUT {
            return false;
        }
        self.out.extend_from_slice(line.as_bytes());
        self.flush()
    }

    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}
