//! Per-scan cost of a screen source on the device itself: `frame()` and a damage scan of a
//! still screen, timed over N scans (wall clock, so run it on an idle board:
//! scripts/bench-board-scan.sh does). For the KMS source against fbdev.
//!
//! `scanbench SPEC [SCANS]`, e.g. `scanbench kms 60`, `scanbench fbdev:/dev/fb0 60`

use std::time::{Duration, Instant};

use thinshadow::screen::Damage;

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(spec) = args.first() else {
        eprintln!("usage: scanbench SPEC [SCANS]");
        std::process::exit(2);
    };
    let scans: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
        .max(1);
    let mut source = thinshadow::screen::open(spec).unwrap_or_else(|e| {
        eprintln!("scanbench: {spec}: {e}");
        std::process::exit(1);
    });
    let (w, h) = match source.frame() {
        Ok(f) => (f.width, f.height),
        Err(e) => {
            eprintln!("scanbench: {spec}: {e}");
            std::process::exit(1);
        }
    };
    let mut frame_only = Vec::with_capacity(scans);
    for _ in 0..scans {
        let t = Instant::now();
        let _ = source.frame();
        frame_only.push(t.elapsed());
    }
    println!(
        "{} {w}x{h}: frame() alone: median {:.3} ms",
        source.describe(),
        median(frame_only)
    );
    let variants = [
        (false, false, "every row"),
        (true, false, "sampled"),
        (
            true,
            true,
            "sampled, and the cursor plane read: as the agent runs",
        ),
    ];
    for (sampling, cursor, how) in variants {
        let mut damage = Damage::new(w, h);
        damage.set_sampling(sampling);
        let mut out = Vec::new();
        // The first scan hashes everything; the still screen's scans follow.
        if let Ok(f) = source.frame() {
            damage.scan(&f, &mut out);
        }
        let mut times = Vec::with_capacity(scans);
        for _ in 0..scans {
            let t = Instant::now();
            if cursor {
                std::hint::black_box(source.cursor());
            }
            if let Ok(f) = source.frame() {
                out.clear();
                damage.scan(&f, &mut out);
            }
            times.push(t.elapsed());
        }
        println!(
            "{} {w}x{h}: frame() + damage scan ({how}): median {:.2} ms over {scans} scans",
            source.describe(),
            median(times)
        );
    }
}
