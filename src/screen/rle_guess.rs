//! A cheap guess whether RDP6 RLE will beat raw planes.
//!
//! On photos and noise the RLE encoder works hard and then overflows the raw size; trying it
//! doubles the encode time for nothing. Every 4th row of each plane is costed the way RLE
//! codes it (row deltas, runs of equal deltas); a wrong guess costs bytes, never pixels.

/// Rows sampled: one in this many.
const SAMPLE: usize = 4;
/// Runs this long pay for their control byte.
const MIN_RUN: usize = 4;
/// Longest run one control byte codes.
const MAX_RUN: usize = 47;

/// True when RLE of these `w`x`h` planes (rows of `w` bytes) is likely below 95% of raw.
pub(crate) fn rle_pays(planes: [&[u8]; 3], w: usize, h: usize) -> bool {
    if h < 2 || w == 0 {
        return true;
    }
    // Costs in fifteenths of a byte: a raw byte costs 16/15 (a control byte per 15 raw ones).
    let (mut est, mut raw) = (0usize, 0usize);
    for plane in planes {
        for y in (1..h).step_by(SAMPLE) {
            let (Some(up), Some(cur)) =
                (plane.get((y - 1) * w..y * w), plane.get(y * w..(y + 1) * w))
            else {
                return true;
            };
            let mut deltas = cur.iter().zip(up).map(|(c, u)| c.wrapping_sub(*u));
            let mut prev = deltas.next().unwrap_or_default();
            let mut run = 1;
            for d in deltas {
                if d == prev {
                    run += 1;
                } else {
                    est += run_cost(run);
                    (prev, run) = (d, 1);
                }
            }
            est += run_cost(run);
            raw += 15 * w;
        }
    }
    est * 20 < raw * 19
}

/// A run of `n` equal deltas: raw bytes if short, else one raw byte and its run controls.
fn run_cost(n: usize) -> usize {
    if n < MIN_RUN {
        16 * n
    } else {
        16 + 15 * (n - 1).div_ceil(MAX_RUN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_graphics::rdp6::BitmapStreamEncoder;

    fn rng(seed: u64) -> impl FnMut() -> u8 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        }
    }

    /// The real RLE size, or None when it would not fit the raw size.
    fn rle_len(p: &[Vec<u8>; 3], w: usize, h: usize) -> Option<usize> {
        let mut dst = vec![0; 3 * w * h + 2];
        let planes = (
            p[0].iter().copied(),
            p[1].iter().copied(),
            p[2].iter().copied(),
        );
        BitmapStreamEncoder::new(w, h)
            .encode_channels_stream(planes, &mut dst, true)
            .ok()
    }

    fn plane(w: usize, h: usize, mut f: impl FnMut(usize, usize) -> u8) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect::<Vec<_>>()
    }

    /// Wrong guesses must be cheap: "raw" only when RLE saves under ~10%, "rle" never when
    /// RLE is far worse than raw.
    fn check(name: &str, p: [Vec<u8>; 3], w: usize, h: usize) -> bool {
        let guess = rle_pays([&p[0], &p[1], &p[2]], w, h);
        let raw = 3 * w * h + 2;
        let rle = rle_len(&p, w, h);
        match (guess, rle) {
            (false, Some(len)) => assert!(
                len * 10 >= raw * 9,
                "{name}: rle {len} vs raw {raw}, guessed raw"
            ),
            (true, None) => panic!("{name}: guessed rle, but it overflows raw {raw}"),
            _ => {}
        }
        guess
    }

    #[test]
    fn guesses_stay_close_to_the_truth() {
        let (w, h) = (192, 64);
        let mut n = rng(1);
        let noise = [(); 3].map(|_| plane(w, h, |_, _| n()));
        assert!(!check("noise", noise, w, h));
        let mut n = rng(2);
        let photo =
            [0, 1, 2].map(|c| plane(w, h, |x, y| ((x + y * c) / 2 + usize::from(n() % 8)) as u8));
        assert!(!check("photo", photo, w, h));
        let flat = [(); 3].map(|_| plane(w, h, |_, _| 0x80));
        assert!(check("flat", flat, w, h));
        let gradient = [0, 1, 2].map(|c| plane(w, h, |x, y| (x * 2 + y * c) as u8));
        assert!(check("gradient", gradient, w, h));
        let mut n = rng(3);
        let text = [(); 3].map(|_| {
            plane(w, h, |x, y| {
                if (x / 7 + y / 11).is_multiple_of(3) && n().is_multiple_of(3) {
                    0
                } else {
                    250
                }
            })
        });
        assert!(check("text", text, w, h));
        let mut n = rng(4);
        let half = [(); 3].map(|_| plane(w, h, |x, _| if x < w / 2 { 9 } else { n() }));
        assert!(check("half noise", half, w, h));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        assert!(rle_pays([&[], &[], &[]], 0, 0));
        assert!(rle_pays([&[1; 4], &[1; 4], &[1; 4]], 4, 1));
        assert!(rle_pays([&[1; 5], &[1; 8], &[1; 8]], 4, 2));
    }
}
