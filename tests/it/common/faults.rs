//! Fault wrappers: each implements the trait of what it wraps (`Read + Write`, `Source`, the
//! keeper's save steps) and misbehaves at points a seeded PRNG picks, so a failing seed replays.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use thinshadow::screen::{Frame, Source, SourceError, synthetic_pixel};
use thinshadow::state::Step;

/// xorshift64*: reproducible randomness without a dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What a [`FaultyStream`] does to the bytes that pass.
#[derive(Clone, Debug)]
pub struct StreamFaults {
    pub seed: u64,
    /// Reads and writes move a random part of what was asked (at least one byte).
    pub short_io: bool,
    /// Chance per call (in thousandths) of a `WouldBlock` before any byte moves.
    pub would_block_per_mille: u64,
    /// After this many bytes (both ways together) the stream is cut: reads see EOF, writes
    /// fail, and the socket is shut down so the peer sees it too.
    pub cut_after: Option<usize>,
}

impl StreamFaults {
    /// Short reads and writes and `WouldBlock` only: a slow, choppy but whole stream.
    pub fn choppy(seed: u64) -> Self {
        StreamFaults {
            seed,
            short_io: true,
            would_block_per_mille: 100,
            cut_after: None,
        }
    }
}

/// A way to hang up the stream under a [`FaultyStream`].
pub trait Cut {
    fn cut(&mut self);
}

impl Cut for TcpStream {
    fn cut(&mut self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

pub struct FaultyStream<S> {
    inner: S,
    faults: Option<(StreamFaults, Rng)>,
    moved: usize,
    cut: bool,
}

impl<S: Read + Write + Cut> FaultyStream<S> {
    pub fn new(inner: S, faults: Option<StreamFaults>) -> Self {
        FaultyStream {
            inner,
            faults: faults.map(|f| {
                let rng = Rng::new(f.seed);
                (f, rng)
            }),
            moved: 0,
            cut: false,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// How many bytes this call may move, or the fault to report instead.
    fn allowance(&mut self, asked: usize) -> io::Result<usize> {
        if self.cut {
            return Ok(0);
        }
        let Some((faults, rng)) = self.faults.as_mut() else {
            return Ok(asked);
        };
        if let Some(limit) = faults.cut_after
            && self.moved >= limit
        {
            self.cut = true;
            self.inner.cut();
            return Ok(0);
        }
        if rng.chance(faults.would_block_per_mille) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                InjectedWouldBlock,
            ));
        }
        let mut allowed = asked;
        if faults.short_io && asked > 1 {
            allowed = 1 + rng.below(asked as u64) as usize;
        }
        if let Some(limit) = faults.cut_after {
            allowed = allowed.min(limit - self.moved).max(1);
        }
        Ok(allowed)
    }
}

/// The error payload of an injected `WouldBlock` (a real timeout has none).
#[derive(Debug)]
pub struct InjectedWouldBlock;

impl std::fmt::Display for InjectedWouldBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected WouldBlock")
    }
}

impl std::error::Error for InjectedWouldBlock {}

pub fn is_injected(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<InjectedWouldBlock>())
}

impl<S: Read + Write + Cut> Read for FaultyStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let allowed = self.allowance(buf.len())?;
        if allowed == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..allowed])?;
        self.moved += n;
        Ok(n)
    }
}

impl<S: Read + Write + Cut> Write for FaultyStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let allowed = self.allowance(buf.len())?;
        if allowed == 0 {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream cut"));
        }
        let n = self.inner.write(&buf[..allowed])?;
        self.moved += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Shared switches of a [`TearingSource`]: faults on or off, the picture phase when off.
#[derive(Clone, Default)]
pub struct TearingControl {
    calm: Arc<AtomicBool>,
    frames: Arc<AtomicUsize>,
}

impl TearingControl {
    /// From the next frame on: no tearing, no size changes, no errors; a still picture.
    pub fn calm_down(&self) {
        self.calm.store(true, Ordering::SeqCst);
    }

    pub fn frames(&self) -> usize {
        self.frames.load(Ordering::SeqCst)
    }
}

/// A screen that tears frames (top of the new picture over the bottom of the old one),
/// changes size, hands out frames whose data is short of their stride, and fails now and
/// then, at seeded points. Calmed down, it shows [`calm_pixel`] at [`CALM_SIZE`].
pub struct TearingSource {
    rng: Rng,
    control: TearingControl,
    size: (u16, u16),
    phase: u32,
    pixels: Vec<u8>,
}

pub const CALM_SIZE: (u16, u16) = (320, 240);
const SIZES: [(u16, u16); 4] = [(320, 240), (256, 192), (400, 300), (322, 241)];

pub fn calm_pixel(x: u16, y: u16) -> u32 {
    synthetic_pixel(CALM_SIZE.0, CALM_SIZE.1, 7, x, y)
}

impl TearingSource {
    pub fn new(seed: u64) -> (Self, TearingControl) {
        let control = TearingControl::default();
        let mut source = TearingSource {
            rng: Rng::new(seed),
            control: control.clone(),
            size: CALM_SIZE,
            phase: 0,
            pixels: Vec::new(),
        };
        source.paint(0, u16::MAX);
        (source, control)
    }

    /// Paints rows `from..to` of the current size with the current phase.
    fn paint(&mut self, from: u16, to: u16) {
        let (w, h) = self.size;
        self.pixels.resize(usize::from(w) * usize::from(h) * 4, 0);
        for y in from..to.min(h) {
            for x in 0..w {
                let at = (usize::from(y) * usize::from(w) + usize::from(x)) * 4;
                let px = synthetic_pixel(w, h, self.phase, x, y);
                self.pixels[at..at + 4].copy_from_slice(&px.to_le_bytes());
            }
        }
    }
}

impl Source for TearingSource {
    fn frame(&mut self) -> Result<Frame<'_>, SourceError> {
        self.control.frames.fetch_add(1, Ordering::SeqCst);
        if self.control.calm.load(Ordering::SeqCst) {
            if (self.size, self.phase) != (CALM_SIZE, 7) {
                self.size = CALM_SIZE;
                self.phase = 7;
                self.paint(0, u16::MAX);
            }
            return Ok(Frame::xrgb8888(self.size.0, self.size.1, &self.pixels));
        }
        match self.rng.below(20) {
            0 => return Err(SourceError::Spec("injected source failure".into())),
            1 => {
                self.size = SIZES[self.rng.below(SIZES.len() as u64) as usize];
                self.phase = self.phase.wrapping_add(1);
                self.paint(0, u16::MAX);
            }
            2 => {
                // Short data: a frame that claims more rows than it has bytes for.
                let cut = self.rng.below(self.pixels.len() as u64) as usize;
                return Ok(Frame::xrgb8888(
                    self.size.0,
                    self.size.1,
                    &self.pixels[..cut],
                ));
            }
            _ => {
                // The scanout met a half-drawn picture: only the top rows are new.
                self.phase = self.phase.wrapping_add(1);
                let torn_at = self.rng.below(u64::from(self.size.1) + 1) as u16;
                self.paint(0, torn_at);
            }
        }
        Ok(Frame::xrgb8888(self.size.0, self.size.1, &self.pixels))
    }

    fn describe(&self) -> String {
        format!("tearing {}x{}", self.size.0, self.size.1)
    }
}

/// A store whose writes fail or stop midway: while `failing` is set, each save stops at a
/// seeded step (an I/O error there, as a full disk or a power cut would leave it).
pub fn failing_store(
    seed: u64,
    failing: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
) -> thinshadow::state::keeper::SaveFaults {
    let mut rng = Rng::new(seed);
    Box::new(move |step: Step| {
        if !failing.load(Ordering::SeqCst) {
            return Ok(());
        }
        let stop_at = Step::ALL[rng.below(Step::ALL.len() as u64) as usize];
        if step == stop_at || rng.chance(300) {
            failures.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::other(format!("injected failure after {step:?}")));
        }
        Ok(())
    })
}
