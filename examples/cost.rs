//! A deterministic cost counter: runs frames through the damage scan and the encoder, for
//! `valgrind --tool=cachegrind` to count instructions (scripts/cost.sh does the runs and the
//! subtraction). Time is not measured here: instruction counts do not depend on the load of
//! a shared machine.
//!
//! `cost SCENARIO WxH FRAMES SAMPLING PHASES`
//! - SCENARIO: `static` (a still test card), `line` (one text line changes every frame, as a
//!   clock's seconds), or `replay:FILE` (raw BGRX frames from `scripts/bench/bench.py frames`);
//! - SAMPLING: `on` (the agent's sampled scans) or `off` (every row every scan, as before);
//! - PHASES: `damage` (scan only), `all` (scan, then encode what it reported) or `bulk` (all,
//!   then bulk compression as for xfreerdp, which asks for RDP 6 and gets MPPC-64K).
//!
//! FRAMES 0 runs the setup alone, so (count(N) - count(0)) / N is the cost of one frame.

use ironrdp_pdu::rdp::client_info::CompressionType;
use thinshadow::screen::{BitmapEncoder, Damage, Frame, encode_copies};

fn test_card(w: usize, h: usize) -> Vec<u8> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut px = vec![0u8; w * h * 4];
    // Flat panels with noisy "text" rows, as a desktop: mostly runs, some detail.
    for (i, p) in px.chunks_exact_mut(4).enumerate() {
        let (x, y) = (i % w, i / w);
        let panel = ((x / 160 + y / 120) % 5) as u8 * 40;
        let text = y % 16 < 9 && x % 400 < 300 && {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s.is_multiple_of(3)
        };
        let v = if text { 20 } else { panel };
        p.copy_from_slice(&[v, v.wrapping_add(30), v.wrapping_add(60), 0]);
    }
    px
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenario, size, frames, sampling, phases] = args.as_slice() else {
        eprintln!("usage: cost static|line|replay:FILE WxH FRAMES on|off damage|all|bulk");
        std::process::exit(2);
    };
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
        .expect("WxH");
    let frames: usize = frames.parse().expect("FRAMES");
    let encode = phases == "all" || phases == "bulk";
    let frame_len = usize::from(w) * usize::from(h) * 4;
    let replay = scenario
        .strip_prefix("replay:")
        .map(|path| std::fs::read(path).expect("replay file"));
    let mut picture = match &replay {
        Some(data) => data[..frame_len].to_vec(),
        None => test_card(usize::from(w), usize::from(h)),
    };

    let mut damage = Damage::new(w, h);
    damage.set_sampling(sampling == "on");
    let mut enc = BitmapEncoder::new();
    // As the agent runs for a client with ScrBlt (xfreerdp, mstsc): scrolled rows become copies,
    // and the encoder tells the scan what it read.
    enc.set_track_sent(true);
    if phases == "bulk" {
        enc.set_compression(Some(CompressionType::Rdp6));
    }
    let (mut rects, mut copies, mut out) = (Vec::new(), Vec::new(), Vec::new());
    // The first, full scan is setup: every client gets it once.
    damage.scan(&Frame::xrgb8888(w, h, &picture), &mut rects);
    rects.clear();

    let (mut reported, mut bytes) = (0usize, 0usize);
    for n in 0..frames {
        match (&replay, scenario.as_str()) {
            (Some(data), _) => {
                let count = data.len() / frame_len;
                let at = (n + 1) % count * frame_len;
                picture.copy_from_slice(&data[at..at + frame_len]);
            }
            (None, "line") => {
                // A 200x9 "clock" whose pixels change every frame.
                let stride = usize::from(w) * 4;
                for y in 100..109 {
                    for x in 64..264 {
                        picture[y * stride + x * 4] ^= (n as u8).wrapping_add(1);
                    }
                }
            }
            _ => {}
        }
        let frame = Frame::xrgb8888(w, h, &picture);
        rects.clear();
        copies.clear();
        damage.scan_with_copies(&frame, &mut rects, &mut copies);
        reported += rects.len() + copies.len();
        if encode {
            out.clear();
            encode_copies(&copies, &mut out).expect("copies");
            bytes += out.len();
            for rect in &rects {
                out.clear();
                enc.encode(&frame, *rect, &mut out).expect("encode");
                bytes += out.len();
                for &(y, col, hash) in enc.sent_segments() {
                    damage.sent(y, col, hash);
                }
            }
        }
    }
    println!("{reported} rectangles and copies, {bytes} bytes");
}
