//! The CLI's side of the control socket: blocking, one request, its reply, and for `watch`
//! the event lines after it.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::json::{self, JsonError, Object, Value};
use super::request::Request;

#[derive(Debug)]
pub enum ClientError {
    /// No agent at the path (or no permission to connect).
    Connect {
        path: String,
        error: io::Error,
    },
    Io(io::Error),
    /// The agent closed the connection before replying.
    Closed,
    /// The reply is not a flat JSON object.
    BadReply(JsonError),
    /// The agent said no: its error message.
    Refused(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, error } => {
                write!(
                    f,
                    "cannot reach the agent at {path}: {error} (is `thinshadow serve` running?)"
                )
            }
            ClientError::Io(e) => write!(f, "control socket: {e}"),
            ClientError::Closed => f.write_str("the agent closed the connection"),
            ClientError::BadReply(e) => write!(f, "unreadable reply: {e}"),
            ClientError::Refused(message) => f.write_str(message),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A connection to the agent.
pub struct Client {
    reader: BufReader<UnixStream>,
}

impl Client {
    /// `timeout` bounds each read and write (not `watch`'s wait for events: see `watch`).
    pub fn connect(path: &Path, timeout: Option<Duration>) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|error| ClientError::Connect {
            path: path.display().to_string(),
            error,
        })?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    /// Sends `request` and returns its reply; `{"ok":false}` becomes `Refused`.
    pub fn call(&mut self, request: &Request) -> Result<(String, Object), ClientError> {
        let written = self
            .reader
            .get_mut()
            .write_all(request.to_line().as_bytes());
        // A refused peer is told why and closed at once: read that reason before the
        // write's broken pipe.
        let (line, object) = match (written, self.next_line()) {
            (_, Ok(Some(reply))) => reply,
            (Err(e), _) => return Err(ClientError::Io(e)),
            (Ok(()), Ok(None)) => return Err(ClientError::Closed),
            (Ok(()), Err(e)) => return Err(e),
        };
        if json::get(&object, "ok") != Some(&Value::Bool(true)) {
            let message = match json::get(&object, "error") {
                Some(Value::Str(m)) => m.clone(),
                _ => line.trim_end().to_owned(),
            };
            return Err(ClientError::Refused(message));
        }
        Ok((line, object))
    }

    /// The next line from the agent, None at its end.
    pub fn next_line(&mut self) -> Result<Option<(String, Object)>, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let object = json::parse_object(&line).map_err(ClientError::BadReply)?;
        Ok(Some((line, object)))
    }

    /// After a `watch` call: no read timeout, events may be hours apart.
    pub fn wait_forever(&mut self) -> Result<(), ClientError> {
        self.reader.get_ref().set_read_timeout(None)?;
        Ok(())
    }
}
