//! RDP 5.0 bulk compression (MPPC with a 64 KB history, MS-RDPBCGR 3.1.8.4.2), written for
//! a small CPU: one hash probe per position, matches checked and extended 8 bytes at a time,
//! and a fragment that does not shrink is sent as it is without touching the history (no
//! flush, so the next fragment still finds its matches).
//!
//! The client's history mirrors `history` up to `offset`; every match is verified against
//! those bytes, so a stale hash entry costs a miss, never a wrong copy.

/// PACKET_COMPRESSED, PACKET_AT_FRONT (MS-RDPBCGR 3.1.8.2.1).
pub(crate) const PACKET_COMPRESSED: u8 = 0x20;
pub(crate) const PACKET_AT_FRONT: u8 = 0x40;

const HISTORY: usize = 65_536;
/// The history restarts at the front when a fragment would come closer to its end than this
/// (the margin the decoders keep).
const HISTORY_MARGIN: usize = 3;
const HASH_BITS: u32 = 14;
/// Matches longer than this insert only their last positions in the hash table: a long run
/// costs its copy, not a table store per byte.
const INSERT_ALL_BELOW: usize = 32;

pub struct Mppc64 {
    history: Box<[u8]>,
    /// HistoryOffset: where the next fragment goes.
    offset: usize,
    /// The newest position of each 3-byte hash.
    table: Box<[u16]>,
    /// The next compressed fragment starts the history at the front (the first one, or after
    /// a fragment sent as it is overwrote the front of ours).
    front: bool,
    out: Vec<u8>,
}

impl Default for Mppc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Mppc64 {
    pub fn new() -> Self {
        Mppc64 {
            history: vec![0; HISTORY].into_boxed_slice(),
            offset: 0,
            table: vec![0; 1 << HASH_BITS].into_boxed_slice(),
            front: true,
            out: Vec::new(),
        }
    }

    /// Compresses `src` as the next fragment: its flags (PACKET_COMPRESSED, with AT_FRONT when
    /// the history restarts) with the stream in `output`, or None when `src` is to be sent as
    /// it is (it would not shrink, or it does not fit the history): the client's history then
    /// stays as it was, and so does ours.
    pub fn compress(&mut self, src: &[u8]) -> Option<u8> {
        let n = src.len();
        if n == 0 || n > HISTORY - HISTORY_MARGIN - 1 {
            return None;
        }
        let mut flags = PACKET_COMPRESSED;
        let mut start = self.offset;
        if self.front || start + n + HISTORY_MARGIN >= HISTORY {
            start = 0;
            flags |= PACKET_AT_FRONT;
        }
        let end = start + n;
        self.history[start..end].copy_from_slice(src);
        self.out.clear();
        let done = encode(&self.history, &mut self.table, start, end, &mut self.out);
        if !done || self.out.len() >= n {
            // Ours now differs from the client's below `end` when we restarted at the front.
            self.front |= start != self.offset;
            return None;
        }
        self.offset = end;
        self.front = false;
        Some(flags)
    }

    /// The stream of the last fragment `compress` compressed.
    pub fn output(&self) -> &[u8] {
        &self.out
    }
}

/// The 3 bytes at `pos` (the history always has one more byte after a fragment's end).
fn load3(h: &[u8], pos: usize) -> u32 {
    let mut four = [0; 4];
    four.copy_from_slice(&h[pos..pos + 4]);
    u32::from_le_bytes(four) & 0x00FF_FFFF
}

fn hash3(v: u32) -> usize {
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// Bytes equal from `a` and `b` on, up to (not including) `end` for `b` (`a` < `b`).
fn match_len(h: &[u8], mut a: usize, mut b: usize, end: usize) -> usize {
    let start = b;
    while b + 8 <= end {
        let x = u64::from_le_bytes(h[a..a + 8].try_into().unwrap_or_default());
        let y = u64::from_le_bytes(h[b..b + 8].try_into().unwrap_or_default());
        let diff = x ^ y;
        if diff != 0 {
            return b - start + (diff.trailing_zeros() / 8) as usize;
        }
        a += 8;
        b += 8;
    }
    while b < end && h[a] == h[b] {
        a += 1;
        b += 1;
    }
    b - start
}

/// Encodes `h[start..end]` against `h[..start]` and itself; false when the stream grew past
/// the input's size (it would be sent as it is).
fn encode(h: &[u8], table: &mut [u16], start: usize, end: usize, out: &mut Vec<u8>) -> bool {
    let limit = end - start;
    let mut bits = Bits::new(out);
    let mut pos = start;
    while pos < end {
        if pos + 3 <= end {
            let here = load3(h, pos);
            let key = hash3(here);
            let cand = usize::from(table[key]);
            // Positions fit u16: the history is 64 KB.
            table[key] = pos as u16;
            if cand < pos && load3(h, cand) == here {
                let len = 3 + match_len(h, cand + 3, pos + 3, end);
                bits.copy_offset(pos - cand);
                bits.match_length(len);
                let last = (pos + len).min(end - 2);
                let from = if len < INSERT_ALL_BELOW {
                    pos + 1
                } else {
                    last.saturating_sub(4).max(pos + 1)
                };
                for p in from..last {
                    table[hash3(load3(h, p))] = p as u16;
                }
                pos += len;
                if bits.len() >= limit {
                    return false;
                }
                continue;
            }
        }
        bits.literal(h[pos]);
        pos += 1;
        if bits.len() >= limit {
            return false;
        }
    }
    bits.finish();
    true
}

/// Bits, most significant first (MPPC's order).
struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    pending: u32,
}

impl<'a> Bits<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Bits {
            out,
            acc: 0,
            pending: 0,
        }
    }

    /// The low `n` (at most 32) bits of `value`.
    fn put(&mut self, value: u32, n: u32) {
        self.acc = (self.acc << n) | u64::from(value & (u32::MAX >> (32 - n)));
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.out.push((self.acc >> self.pending) as u8);
        }
    }

    fn len(&self) -> usize {
        self.out.len()
    }

    /// Pads the last byte with zeros (fewer than 8 bits: no symbol).
    fn finish(&mut self) {
        if self.pending > 0 {
            self.put(0, 8 - self.pending);
        }
    }

    fn literal(&mut self, b: u8) {
        if b < 0x80 {
            self.put(u32::from(b), 8);
        } else {
            self.put(0x100 | u32::from(b & 0x7F), 9);
        }
    }

    /// `d` in 1..65536.
    fn copy_offset(&mut self, d: usize) {
        let d = d as u32;
        match d {
            0..64 => self.put(0x1F << 6 | d, 11),
            64..320 => self.put(0x1E << 8 | (d - 64), 13),
            320..2368 => self.put(0xE << 11 | (d - 320), 15),
            _ => self.put(0x6 << 16 | (d - 2368), 19),
        }
    }

    /// `len` in 3..65536: 3 is "0"; else k-1 ones, a zero, and the k bits below 2^k
    /// (k = floor(log2 len)).
    fn match_length(&mut self, len: usize) {
        let len = len as u32;
        if len == 3 {
            self.put(0, 1);
            return;
        }
        let k = 31 - len.leading_zeros();
        self.put(((1 << (k - 1)) - 1) << 1, k);
        self.put(len - (1 << k), k);
    }
}

#[cfg(test)]
#[path = "mppc_tests.rs"]
mod tests;
