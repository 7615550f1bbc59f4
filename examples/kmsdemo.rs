//! A deterministic DRM master for the board's KMS check: modesets a dumb buffer with a known
//! picture, and each time the trigger file appears page-flips to the other buffer.
//!
//! `kmsdemo [--card /dev/dri/card0] [--trigger /tmp/kmsdemo-flip] [--rgb565]`
//! (virtio-gpu refuses 16 bpp dumb buffers with EINVAL: --rgb565 is for other drivers, such as
//! cirrus.) `kmsdemo --picture A|B WxH OUT.ppm [--rgb565]` writes, on any machine, the picture a
//! screen shows of that buffer (16-bit channels widened by bit replication): the reference where
//! no screendump can be had.
//! Picture A: four quadrants (red, green, blue, white); picture B: eight vertical stripes.
//! Reads every evdev node in /dev/input as a compositor would (no grab; nodes that appear
//! later, such as the agent's uinput keyboard, are opened within a second) and prints
//! `kmsdemo: key CODE down` for each key press: the board checks that the admin's typing
//! reaches the DRM master's input.
//! Shows a cursor as a compositor does, on the cursor plane: a 64x64 ARGB image with an
//! opaque 12x18 block at its top left, at (40, 30); each time `--cursor-trigger` appears
//! holding "X Y" it moves there (`kmsdemo: cursor at X,Y`).
//! Polls the triggers and the keyboards every 50 ms: a demo, not the agent, so a plain sleep
//! loop is fine.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use drm::Device as _;
use drm::buffer::{Buffer as _, DrmFourcc};
use drm::control::{Device as _, PageFlipFlags, connector, framebuffer};

struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl drm::Device for Card {}
impl drm::control::Device for Card {}

const STRIPES: [u32; 8] = [
    0x000000, 0xFF0000, 0x00FF00, 0x0000FF, 0xFFFF00, 0x00FFFF, 0xFF00FF, 0xFFFFFF,
];

/// The XRGB colour of picture `b` (false: A) at (x, y) on a w x h screen.
fn colour(b: bool, x: u32, y: u32, w: u32, h: u32) -> u32 {
    if b {
        return STRIPES[(x * 8 / w) as usize];
    }
    match (x >= w / 2, y >= h / 2) {
        (false, false) => 0xFF0000,
        (true, false) => 0x00FF00,
        (false, true) => 0x0000FF,
        (true, true) => 0xFFFFFF,
    }
}

fn rgb565(c: u32) -> u16 {
    (((c >> 19) & 0x1F) << 11 | ((c >> 10) & 0x3F) << 5 | ((c >> 3) & 0x1F)) as u16
}

/// An RGB565 pixel shown at 8 bits a channel: 5 bits abcde become abcdeabc, 6 bits abcdef
/// become abcdefab (what pixman and QEMU do).
fn shown565(v: u16) -> [u8; 3] {
    let (r, g, b) = (v >> 11, (v >> 5) & 0x3F, v & 0x1F);
    [
        (r << 3 | r >> 2) as u8,
        (g << 2 | g >> 4) as u8,
        (b << 3 | b >> 2) as u8,
    ]
}

/// `--picture A|B WxH OUT [--rgb565]`: the picture as a binary PPM.
fn write_picture(args: &[String]) -> Result<(), String> {
    let [which, size, out, rest @ ..] = args else {
        return Err("--picture A|B WxH OUT.ppm [--rgb565]".into());
    };
    let rgb = rest.iter().any(|a| a == "--rgb565");
    let b = match which.as_str() {
        "A" => false,
        "B" => true,
        _ => return Err(format!("--picture: A or B, not {which}")),
    };
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or("--picture: size is WxH")?;
    let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
    for y in 0..h {
        for x in 0..w {
            let c = colour(b, x, y, w, h);
            let px = if rgb {
                shown565(rgb565(c))
            } else {
                [(c >> 16) as u8, (c >> 8) as u8, c as u8]
            };
            ppm.extend_from_slice(&px);
        }
    }
    std::fs::write(out, ppm).map_err(|e| format!("{out}: {e}"))
}

/// The evdev nodes a compositor would read, opened without a grab.
#[derive(Default)]
struct Keyboards {
    open: Vec<(PathBuf, File)>,
}

impl Keyboards {
    /// Opens the nodes not open yet (the agent's uinput devices come with the agent).
    fn rescan(&mut self) {
        let Ok(dir) = std::fs::read_dir("/dev/input") else {
            return;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            let is_event = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("event"));
            if !is_event || self.open.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&path);
            if let Ok(file) = file {
                self.open.push((path, file));
            }
        }
    }

    /// Prints each key press that waits; a node that went away is dropped.
    fn read(&mut self) {
        const EVENT: usize = std::mem::size_of::<nix::libc::input_event>();
        self.open.retain_mut(|(path, file)| {
            let mut buf = [0u8; EVENT * 64];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => return false,
                    Ok(n) => {
                        for event in buf[..n].chunks_exact(EVENT) {
                            // type u16, code u16, value i32 after the timeval.
                            let at = EVENT - 8;
                            let kind = u16::from_ne_bytes([event[at], event[at + 1]]);
                            let code = u16::from_ne_bytes([event[at + 2], event[at + 3]]);
                            let value =
                                i32::from_ne_bytes(event[at + 4..at + 8].try_into().unwrap());
                            if kind == 1 && value == 1 {
                                println!("kmsdemo: key {code} down ({})", path.display());
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            }
        });
    }
}

/// The legacy cursor ioctls, which X's modesetting driver and many kiosks still use: on an
/// atomic driver the kernel turns them into cursor plane state, which is what the agent reads.
#[allow(deprecated)]
fn legacy_cursor(
    card: &Card,
    crtc: drm::control::crtc::Handle,
    image: Option<&drm::control::dumbbuffer::DumbBuffer>,
    at: (i32, i32),
) -> std::io::Result<()> {
    if let Some(image) = image {
        card.set_cursor(crtc, Some(image))?;
    }
    card.move_cursor(crtc, at)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("kmsdemo: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().is_some_and(|a| a == "--picture") {
        return write_picture(&all[1..]);
    }
    let mut card_path = "/dev/dri/card0".to_owned();
    let mut trigger = PathBuf::from("/tmp/kmsdemo-flip");
    let mut cursor_trigger = PathBuf::from("/tmp/kmsdemo-cursor");
    let mut rgb = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--card" => card_path = args.next().ok_or("--card needs a path")?,
            "--trigger" => trigger = args.next().ok_or("--trigger needs a path")?.into(),
            "--cursor-trigger" => {
                cursor_trigger = args.next().ok_or("--cursor-trigger needs a path")?.into()
            }
            "--rgb565" => rgb = true,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let file = OpenOptions::new().read(true).write(true).open(&card_path);
    let card = Card(file.map_err(|e| format!("{card_path}: {e}"))?);
    card.acquire_master_lock()
        .map_err(|e| format!("DRM master: {e}"))?;
    let res = card
        .resource_handles()
        .map_err(|e| format!("resources: {e}"))?;
    let conn = res
        .connectors()
        .iter()
        .filter_map(|&c| card.get_connector(c, true).ok())
        .find(|c| c.state() == connector::State::Connected && !c.modes().is_empty())
        .ok_or("no connected connector with modes")?;
    let mode = conn.modes()[0];
    let crtc = conn
        .encoders()
        .iter()
        .filter_map(|&e| card.get_encoder(e).ok())
        .flat_map(|e| res.filter_crtcs(e.possible_crtcs()))
        .next()
        .ok_or("no CRTC for the connector")?;
    let (w, h) = (u32::from(mode.size().0), u32::from(mode.size().1));
    let (format, depth, bpp) = if rgb {
        (DrmFourcc::Rgb565, 16, 16)
    } else {
        (DrmFourcc::Xrgb8888, 24, 32)
    };
    let mut fbs: Vec<framebuffer::Handle> = Vec::new();
    for b in [false, true] {
        let mut dumb = card
            .create_dumb_buffer((w, h), format, bpp)
            .map_err(|e| format!("dumb buffer: {e}"))?;
        let pitch = dumb.pitch() as usize;
        {
            let mut map = card
                .map_dumb_buffer(&mut dumb)
                .map_err(|e| format!("map: {e}"))?;
            for y in 0..h {
                let row = &mut map[y as usize * pitch..];
                for x in 0..w {
                    let c = colour(b, x, y, w, h);
                    if rgb {
                        let at = x as usize * 2;
                        row[at..at + 2].copy_from_slice(&rgb565(c).to_le_bytes());
                    } else {
                        let at = x as usize * 4;
                        row[at..at + 4].copy_from_slice(&c.to_le_bytes());
                    }
                }
            }
        }
        let fb = card
            .add_framebuffer(&dumb, depth, bpp)
            .map_err(|e| format!("addfb: {e}"))?;
        fbs.push(fb);
    }
    card.set_crtc(crtc, Some(fbs[0]), (0, 0), &[conn.handle()], Some(mode))
        .map_err(|e| format!("modeset: {e}"))?;
    println!("kmsdemo: showing A on {conn} {w}x{h} {format:?}");
    // The cursor plane: a driver without one (or refusing the image) is said, not fatal.
    let cursor = card
        .create_dumb_buffer((64, 64), DrmFourcc::Argb8888, 32)
        .map_err(|e| format!("cursor buffer: {e}"))?;
    let mut cursor = cursor;
    {
        let pitch = cursor.pitch() as usize;
        let mut map = card
            .map_dumb_buffer(&mut cursor)
            .map_err(|e| format!("map cursor: {e}"))?;
        map.fill(0);
        for y in 0..18 {
            for x in 0..12 {
                let edge = x == 0 || y == 0 || x == 11 || y == 17;
                let c: u32 = if edge { 0xFFFF_FFFF } else { 0xFF20_2020 };
                let at = y * pitch + x * 4;
                map[at..at + 4].copy_from_slice(&c.to_le_bytes());
            }
        }
    }
    match legacy_cursor(&card, crtc, Some(&cursor), (40, 30)) {
        Ok(()) => println!("kmsdemo: cursor at 40,30"),
        Err(e) => println!("kmsdemo: no cursor: {e}"),
    }
    let mut shown = 0;
    let mut keyboards = Keyboards::default();
    let mut turn = 0u64;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        turn += 1;
        if turn % 20 == 1 {
            keyboards.rescan();
        }
        keyboards.read();
        if let Ok(text) = std::fs::read_to_string(&cursor_trigger) {
            let _ = std::fs::remove_file(&cursor_trigger);
            let mut it = text
                .split_whitespace()
                .filter_map(|v| v.parse::<i32>().ok());
            if let (Some(x), Some(y)) = (it.next(), it.next()) {
                match legacy_cursor(&card, crtc, None, (x, y)) {
                    Ok(()) => println!("kmsdemo: cursor at {x},{y}"),
                    Err(e) => println!("kmsdemo: cursor move failed: {e}"),
                }
            }
        }
        if std::fs::remove_file(&trigger).is_err() {
            continue;
        }
        shown = 1 - shown;
        // A flip where the driver has one, else a modeset with the same mode.
        if card
            .page_flip(crtc, fbs[shown], PageFlipFlags::empty(), None)
            .is_err()
        {
            card.set_crtc(crtc, Some(fbs[shown]), (0, 0), &[conn.handle()], Some(mode))
                .map_err(|e| format!("modeset: {e}"))?;
        }
        println!("kmsdemo: showing {}", if shown == 0 { "A" } else { "B" });
    }
}
