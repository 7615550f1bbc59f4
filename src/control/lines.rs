//! Splits a byte stream into lines with a length cap, so one peer's memory is bounded.

use std::fmt;

/// The longest accepted request line, newline excluded.
pub const MAX_LINE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError {
    /// A line (or an unfinished one) is longer than the cap.
    TooLong {
        cap: usize,
    },
    NotUtf8,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong { cap } => write!(f, "request line longer than {cap} bytes"),
            LineError::NotUtf8 => f.write_str("request line is not utf-8"),
        }
    }
}

/// Holds at most `cap` + one read's worth of bytes; an error is final for the stream.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    cap: usize,
}

impl LineReader {
    pub fn new(cap: usize) -> Self {
        LineReader {
            buf: Vec::new(),
            cap,
        }
    }

    /// Appends bytes as read from the peer.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete line (without "\n" or "\r\n"), None when more bytes are needed.
    pub fn next_line(&mut self) -> Option<Result<String, LineError>> {
        let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
            return (self.buf.len() > self.cap)
                .then_some(Err(LineError::TooLong { cap: self.cap }));
        };
        if end > self.cap {
            return Some(Err(LineError::TooLong { cap: self.cap }));
        }
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(String::from_utf8(line).map_err(|_| LineError::NotUtf8))
    }

    /// Bytes held for an unfinished line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads() {
        let mut r = LineReader::new(16);
        r.feed(b"{\"a\":1}\r\n{\"b\"");
        assert_eq!(r.next_line(), Some(Ok("{\"a\":1}".into())));
        assert_eq!(r.next_line(), None);
        r.feed(b":2}\n\n");
        assert_eq!(r.next_line(), Some(Ok("{\"b\":2}".into())));
        assert_eq!(r.next_line(), Some(Ok(String::new())));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn oversized_and_binary_lines_are_errors() {
        let mut r = LineReader::new(8);
        r.feed(b"123456789");
        assert_eq!(r.next_line(), Some(Err(LineError::TooLong { cap: 8 })));
        let mut r = LineReader::new(8);
        r.feed(b"12345678\n");
        assert_eq!(r.next_line(), Some(Ok("12345678".into())));
        r.feed(b"123456789\n");
        assert_eq!(r.next_line(), Some(Err(LineError::TooLong { cap: 8 })));
        let mut r = LineReader::new(8);
        r.feed(b"\xff\xfe\n");
        assert_eq!(r.next_line(), Some(Err(LineError::NotUtf8)));
    }
}
