//! RDP 6.0 planar RLE of one 8-bit colour plane (MS-RDPEGDI 3.1.9.2), written for speed:
//! slices and one pass per scanline, where IronRDP's encoder goes through iterators and a
//! vector per scanline (about 3x slower on our frames, see benches/replay.rs).
//!
//! Each scanline after the first is coded as deltas to the one above (sign in the low bit),
//! then as segments: a control byte (raw count << 4 | run length), the raw bytes, and a run
//! repeating the last byte. Run lengths 1 and 2 mean long runs (16 + n, 32 + n) without raw.

/// Appends the RLE of a `w`x`h` plane (rows of `w` bytes, top row first as given) to `out`;
/// `false` (with `out` holding a partial plane) when it might grow past `limit` bytes: `out`
/// never does, so a buffer reserved for `limit` is never reallocated.
pub(crate) fn encode_plane(
    plane: &[u8],
    w: usize,
    h: usize,
    delta: &mut Vec<u8>,
    out: &mut Vec<u8>,
    limit: usize,
) -> bool {
    if w == 0 || plane.len() < w * h {
        return false;
    }
    delta.resize(w, 0);
    // The most one scanline takes: every byte raw, a control byte per 15, one more.
    let worst = w + w / 15 + 1;
    for y in 0..h {
        if out.len() + worst > limit {
            return false;
        }
        let row = &plane[y * w..(y + 1) * w];
        let line = if y == 0 {
            row
        } else {
            let above = &plane[(y - 1) * w..y * w];
            for ((d, c), a) in delta.iter_mut().zip(row).zip(above) {
                let v = c.wrapping_sub(*a) as i8;
                // 2|v| for v >= 0, 2|v| - 1 below: the low bit carries the sign.
                *d = ((v as u8) << 1) ^ ((v >> 7) as u8);
            }
            &delta[..]
        };
        scanline(line, out);
    }
    true
}

/// One scanline as segments. Runs shorter than 3 repeats stay raw (a run needs its own
/// control byte). Raw stretches are crossed eight bytes a step (`next_run`).
fn scanline(src: &[u8], out: &mut Vec<u8>) {
    // The value a run at the start of the scanline (or after a segment) repeats.
    let mut last = 0u8;
    let mut raw_start = 0;
    let mut i = 0;
    while i < src.len() {
        // With no raw bytes pending, three or more of `last` are a run of their own.
        if raw_start == i && src[i] == last {
            let j = run_end(src, i + 1, last);
            if j - i >= 3 {
                segment(&[], j - i, last, out);
                raw_start = j;
                i = j;
                continue;
            }
        }
        // Else a run follows raw bytes: the raw part ends with the run's first byte, and the
        // run repeats it three times or more.
        let Some(p) = next_run(src, i) else {
            break;
        };
        let v = src[p];
        let j = run_end(src, p + 1, v);
        segment(&src[raw_start..=p], j - p - 1, v, out);
        last = v;
        raw_start = j;
        i = j;
    }
    if raw_start < src.len() {
        segment(&src[raw_start..], 0, 0, out);
    }
}

/// The first index from `p` on where four equal bytes start.
#[inline]
fn next_run(src: &[u8], mut p: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let word = |at: usize| {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&src[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    while p + 11 <= src.len() {
        let (a, b, c, d) = (word(p), word(p + 1), word(p + 2), word(p + 3));
        // Byte k is zero where the four bytes from p + k are equal; the lowest zero byte is
        // found exactly (the borrow only spoils bytes above it).
        let t = (a ^ b) | (b ^ c) | (c ^ d);
        let zero = t.wrapping_sub(ONES) & !t & HIGHS;
        if zero != 0 {
            return Some(p + (zero.trailing_zeros() / 8) as usize);
        }
        p += 8;
    }
    while p + 3 < src.len() {
        let v = src[p];
        if src[p + 1] == v && src[p + 2] == v && src[p + 3] == v {
            return Some(p);
        }
        p += 1;
    }
    None
}

/// The first index from `j` on whose byte is not `v` (or the length): eight bytes a step
/// through long runs, the common case in flat UI areas.
#[inline]
fn run_end(src: &[u8], mut j: usize, v: u8) -> usize {
    if src.get(j).is_none_or(|&b| b != v) {
        return j;
    }
    let pattern = u64::from_ne_bytes([v; 8]);
    while let Some(word) = src.get(j..j + 8) {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        let diff = u64::from_le_bytes(bytes) ^ pattern;
        if diff != 0 {
            return j + (diff.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while src.get(j).is_some_and(|&b| b == v) {
        j += 1;
    }
    j
}

/// `raw` bytes then `run` (0 or >= 3) repeats of `value` (the last raw byte, or the last
/// value before them when `raw` is empty).
fn segment(mut raw: &[u8], mut run: usize, value: u8, out: &mut Vec<u8>) {
    while raw.len() > 15 {
        out.push(0xF0);
        out.extend_from_slice(&raw[..15]);
        raw = &raw[15..];
    }
    if !raw.is_empty() {
        let r = if run >= 3 { run.min(15) } else { 0 };
        out.push(((raw.len() as u8) << 4) | r as u8);
        out.extend_from_slice(raw);
        run -= r;
    }
    while run >= 16 {
        let n = run.min(47);
        out.push(if n >= 32 {
            (((n - 32) as u8) << 4) | 2
        } else {
            (((n - 16) as u8) << 4) | 1
        });
        run -= n;
    }
    match run {
        0 => {}
        1 | 2 => {
            // Too short for a run code: repeat the value as raw bytes.
            out.push((run as u8) << 4);
            out.extend(std::iter::repeat_n(value, run));
        }
        n => out.push(n as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_graphics::rdp6::{BitmapStreamDecoder, BitmapStreamEncoder};

    fn rng(seed: u64) -> impl FnMut() -> u8 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        }
    }

    /// Our planes in a stream, decoded by IronRDP: must give the planes back exactly.
    fn round_trip(planes: [&[u8]; 3], w: usize, h: usize) -> usize {
        let mut stream = vec![0x30]; // RLE, no alpha
        let mut delta = Vec::new();
        for p in planes {
            assert!(encode_plane(p, w, h, &mut delta, &mut stream, usize::MAX));
        }
        let mut rgb = Vec::new();
        BitmapStreamDecoder::default()
            .decode_bitmap_stream_to_rgb24(&stream, &mut rgb, w, h)
            .unwrap();
        for (i, px) in rgb.chunks(3).enumerate() {
            assert_eq!(px, [planes[0][i], planes[1][i], planes[2][i]], "pixel {i}");
        }
        stream.len()
    }

    fn ironrdp_len(planes: [&[u8]; 3], w: usize, h: usize) -> usize {
        let mut dst = vec![0; 8 * w * h + 64];
        let it = (
            planes[0].iter().copied(),
            planes[1].iter().copied(),
            planes[2].iter().copied(),
        );
        BitmapStreamEncoder::new(w, h)
            .encode_channels_stream(it, &mut dst, true)
            .unwrap()
    }

    #[test]
    fn planes_of_every_kind_round_trip_no_bigger_than_ironrdp() {
        let mut n = rng(11);
        let (w, h) = (64, 40);
        let kinds: Vec<Vec<u8>> = vec![
            vec![0; w * h],
            vec![200; w * h],
            (0..w * h).map(|_| n()).collect(),
            (0..w * h).map(|i| (i % w / 7 * 30 + i / w) as u8).collect(),
            // Text-like: runs of every length 1..60 with rare changes, odd values next to runs.
            (0..w * h)
                .map(|i| if (i * 7 / 3) % 61 < (i % 13) { 9 } else { 250 })
                .collect(),
            (0..w * h)
                .map(|i| {
                    if n().is_multiple_of(17) {
                        n()
                    } else {
                        (i / w) as u8
                    }
                })
                .collect(),
        ];
        for (k, a) in kinds.iter().enumerate() {
            for b in &kinds {
                let ours = round_trip([a, b, &kinds[(k + 2) % kinds.len()]], w, h);
                let theirs = ironrdp_len([a, b, &kinds[(k + 2) % kinds.len()]], w, h);
                assert!(
                    ours <= theirs + 3 * h,
                    "kind {k}: {ours} vs IronRDP {theirs}"
                );
            }
        }
    }

    /// The scanline coder before `next_run`, byte by byte: the fast one must write the same.
    fn scanline_bytewise(src: &[u8], out: &mut Vec<u8>) {
        // The value a run at the start of the scanline repeats.
        let mut last = 0u8;
        let mut raw_start = 0;
        let mut i = 0;
        while i < src.len() {
            let v = src[i];
            let j = run_end(src, i + 1, v);
            // With no raw bytes pending and `v` already the last value, every byte is the run;
            // otherwise the first `v` ends the raw bytes and the rest repeat it.
            let (raw_end, run) = if raw_start == i && last == v {
                (i, j - i)
            } else {
                (i + 1, j - i - 1)
            };
            if run >= 3 {
                segment(&src[raw_start..raw_end], run, v, out);
                last = v;
                raw_start = j;
            }
            i = j;
        }
        if raw_start < src.len() {
            segment(&src[raw_start..], 0, 0, out);
        }
    }

    #[test]
    fn the_fast_scanline_writes_what_the_bytewise_one_did() {
        let mut n = rng(23);
        for len in (0..80).chain([200, 1000, 4096]) {
            for density in [1u8, 2, 4, 8, 32, 255] {
                // Runs of random lengths (often 1..5, around the 3 and 4 thresholds) of few values.
                let mut line = Vec::new();
                while line.len() < len {
                    let v = n() % density;
                    let run = 1 + usize::from(n() % 6) + usize::from(n().is_multiple_of(64)) * 40;
                    line.extend(std::iter::repeat_n(v, run));
                }
                line.truncate(len);
                let (mut fast, mut slow) = (Vec::new(), Vec::new());
                scanline(&line, &mut fast);
                scanline_bytewise(&line, &mut slow);
                assert_eq!(fast, slow, "{line:?}");
            }
        }
    }

    #[test]
    fn every_run_length_round_trips() {
        // A run of each length 1..=100 of one value, then of another, in one long scanline.
        let mut line = Vec::new();
        for len in 1..=100usize {
            line.extend(std::iter::repeat_n((len % 3) as u8 * 100, len));
        }
        let w = line.len();
        let plane: Vec<u8> = line.iter().chain(line.iter().rev()).copied().collect();
        round_trip([&plane, &plane, &plane], w, 2);
        let zeros = vec![0u8; w * 2];
        round_trip([&zeros, &plane, &zeros], w, 2);
    }

    #[test]
    fn the_limit_and_bad_sizes_stop_it() {
        let mut n = rng(5);
        let noise: Vec<u8> = (0..64 * 64).map(|_| n()).collect();
        let (mut delta, mut out) = (Vec::new(), Vec::new());
        assert!(!encode_plane(&noise, 64, 64, &mut delta, &mut out, 64 * 64));
        assert!(!encode_plane(
            &noise,
            0,
            64,
            &mut delta,
            &mut out,
            usize::MAX
        ));
        assert!(!encode_plane(
            &noise[..100],
            64,
            64,
            &mut delta,
            &mut out,
            usize::MAX
        ));
    }
}
