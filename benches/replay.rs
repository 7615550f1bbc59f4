//! Replays recorded frames through the screen pipeline (damage scan, encode) and reports where
//! the bytes and the time go: per frame, per rectangle size, and in total.
//!
//! `scripts/bench/bench.py frames --size 1280x800 --count 150 --out /tmp/frames.raw` writes the
//! side-by-side bench's workload (scripts/bench-vs-freerdp.sh) as raw BGRX frames; then
//! `REPLAY=/tmp/frames.raw REPLAY_SIZE=1280x800 cargo bench --bench replay`.
//! Without REPLAY it says how to make the file and exits. Scrolled rows go as copies, as for a
//! client that draws ScrBlt (FreeRDP, mstsc); REPLAY_COPIES=0 encodes them as bitmaps.

use std::time::{Duration, Instant};

use ironrdp_pdu::rdp::client_info::CompressionType;
use thinshadow::screen::{BitmapEncoder, CopyRect, Damage, Frame, encode_copies};

fn main() {
    let (Some(path), Some(size)) = (
        std::env::var_os("REPLAY"),
        std::env::var("REPLAY_SIZE").ok(),
    ) else {
        println!(
            "replay: set REPLAY=FILE and REPLAY_SIZE=WxH (FILE from scripts/bench/bench.py frames)"
        );
        return;
    };
    let Some((w, h)) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
    else {
        eprintln!("REPLAY_SIZE: WxH");
        std::process::exit(2);
    };
    let data = std::fs::read(&path).expect("read REPLAY");
    let frame_len = usize::from(w) * usize::from(h) * 4;
    let frames = data.len() / frame_len;
    // The first frame is the initial full screen: measured apart from the rest.
    let mut damage = Damage::new(w, h);
    let mut enc = BitmapEncoder::new();
    let mut out = Vec::new();
    let mut rects = Vec::new();
    let mut copies: Vec<CopyRect> = Vec::new();
    let with_copies = std::env::var("REPLAY_COPIES").as_deref() != Ok("0");
    enc.set_track_sent(with_copies);
    let mut ncopies = 0usize;
    let (mut scan_t, mut enc_t) = (Duration::ZERO, Duration::ZERO);
    let (mut bytes, mut area, mut nrects) = (0usize, 0usize, 0usize);
    let mut first = 0;
    let mut per_frame = Vec::new();
    let mut flag_counts = std::collections::BTreeMap::new();
    // REPLAY_BULK=5|6|61: the encoder compresses as for a client asking for that type (each
    // gets MPPC-64K, see Bulk::for_client).
    let bulk = match std::env::var("REPLAY_BULK").as_deref() {
        Ok("5") => Some(CompressionType::K64),
        Ok("6") => Some(CompressionType::Rdp6),
        Ok("61") => Some(CompressionType::Rdp61),
        _ => None,
    };
    enc.set_compression(bulk);
    if let Some(max) = std::env::var("REPLAY_MAX_UPDATE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        enc.set_max_update_len(max);
    }
    for i in 0..frames {
        let frame = Frame::xrgb8888(w, h, &data[i * frame_len..(i + 1) * frame_len]);
        rects.clear();
        copies.clear();
        out.clear();
        let t = Instant::now();
        if with_copies {
            damage.scan_with_copies(&frame, &mut rects, &mut copies);
            encode_copies(&copies, &mut out).expect("copies");
        } else {
            damage.scan(&frame, &mut rects);
        }
        let st = t.elapsed();
        ncopies += copies.len();
        let t = Instant::now();
        for r in &rects {
            enc.encode(&frame, *r, &mut out).expect("encode");
            for &(y, col, hash) in enc.sent_segments() {
                damage.sent(y, col, hash);
            }
        }
        let et = t.elapsed();
        count_flags(&out, &mut flag_counts);
        if i == 0 {
            first = out.len();
            continue;
        }
        scan_t += st;
        enc_t += et;
        bytes += out.len();
        nrects += rects.len();
        area += rects
            .iter()
            .map(|r| usize::from(r.w) * usize::from(r.h))
            .sum::<usize>();
        per_frame.push((out.len(), rects.len(), et));
    }
    let n = (frames - 1).max(1) as f64;
    println!(
        "replay {size}: {frames} frames from {}",
        path.to_string_lossy()
    );
    println!("first frame: {} KB", first / 1024);
    println!(
        "per frame (mean of {}): scan {:.2} ms, encode {:.2} ms, {:.1} KB, {:.1} rects, {:.0} K pixels, {:.1} copies",
        frames - 1,
        scan_t.as_secs_f64() * 1e3 / n,
        enc_t.as_secs_f64() * 1e3 / n,
        bytes as f64 / 1024.0 / n,
        nrects as f64 / n,
        area as f64 / 1000.0 / n,
        ncopies as f64 / n,
    );
    println!("bulk compression: {bulk:?}; fragments by compression flags: {flag_counts:?}");
    per_frame.sort_by_key(|p| p.0);
    let pick = |q: f64| per_frame[((per_frame.len() - 1) as f64 * q) as usize];
    for (label, q) in [("min", 0.0), ("median", 0.5), ("p95", 0.95), ("max", 1.0)] {
        let (b, r, t) = pick(q);
        println!(
            "  {label:>6}: {:>7.1} KB {:>4} rects {:>6.2} ms",
            b as f64 / 1024.0,
            r,
            t.as_secs_f64() * 1e3
        );
    }
}

/// Counts the fast-path PDUs in `out` by their compression flags (none: plain).
fn count_flags(out: &[u8], counts: &mut std::collections::BTreeMap<String, usize>) {
    use ironrdp_core::{ReadCursor, decode_cursor};
    use ironrdp_pdu::fast_path::{FastPathHeader, FastPathUpdatePdu};
    let mut cursor = ReadCursor::new(out);
    while !cursor.is_empty() {
        let Ok(_) = decode_cursor::<FastPathHeader>(&mut cursor) else {
            return;
        };
        let Ok(pdu) = decode_cursor::<FastPathUpdatePdu<'_>>(&mut cursor) else {
            return;
        };
        let key = format!("{:?}", pdu.compression_flags.map(|f| f.bits()));
        *counts.entry(key).or_default() += 1;
    }
}
