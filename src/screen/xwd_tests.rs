use super::*;

struct Spec {
    width: u32,
    height: u32,
    bits: u32,
    bytes_per_line: u32,
    masks: [u32; 3],
    byte_order: u32,
    ncolors: u32,
    name: &'static [u8],
}

const XVFB_640: Spec = Spec {
    width: 640,
    height: 480,
    bits: 32,
    bytes_per_line: 2560,
    masks: [0xff_0000, 0xff00, 0xff],
    byte_order: LSB_FIRST,
    ncolors: 256,
    name: b"Xvfb main window\0",
};

/// A header as Xvfb writes it, then the colormap, then `pixel(x, y)` rows.
fn build(s: &Spec, pixel: impl Fn(u32, u32) -> u32) -> Vec<u8> {
    let header_size = FIXED_HEADER as u32 + s.name.len() as u32;
    let mut h = [0u32; HEADER_FIELDS];
    h[HEADER_SIZE] = header_size;
    h[FILE_VERSION] = XWD_FILE_VERSION;
    h[PIXMAP_FORMAT] = Z_PIXMAP;
    h[3] = 24; // depth
    h[PIXMAP_WIDTH] = s.width;
    h[PIXMAP_HEIGHT] = s.height;
    h[BYTE_ORDER] = s.byte_order;
    h[BITS_PER_PIXEL] = s.bits;
    h[BYTES_PER_LINE] = s.bytes_per_line;
    h[13] = 4; // TrueColor
    h[RED_MASK] = s.masks[0];
    h[GREEN_MASK] = s.masks[1];
    h[BLUE_MASK] = s.masks[2];
    h[NCOLORS] = s.ncolors;
    let mut out: Vec<u8> = h.iter().flat_map(|v| v.to_be_bytes()).collect();
    out.extend_from_slice(s.name);
    out.resize(out.len() + s.ncolors as usize * 12, 0xEE);
    let bytes = s.bits / 8;
    for y in 0..s.height {
        let start = out.len();
        for x in 0..s.width {
            let v = pixel(x, y).to_le_bytes();
            match s.byte_order {
                LSB_FIRST => out.extend_from_slice(&v[..bytes as usize]),
                _ => out.extend(v[..bytes as usize].iter().rev()),
            }
        }
        out.resize(start + s.bytes_per_line as usize, 0);
    }
    out
}

#[test]
fn parses_an_xvfb_header() {
    let file = build(&XVFB_640, |_, _| 0);
    let h = parse(&file).unwrap();
    assert_eq!(
        h,
        XwdHeader {
            width: 640,
            height: 480,
            stride: 2560,
            format: PixelFormat::XRGB8888,
            data_offset: 100 + 17 + 256 * 12,
        }
    );
}

#[test]
fn msb_first_and_16_bit_layouts() {
    let msb = Spec {
        byte_order: MSB_FIRST,
        ncolors: 0,
        ..XVFB_640
    };
    let f = parse(&build(&msb, |_, _| 0)).unwrap().format;
    assert_eq!((f.red.offset, f.green.offset, f.blue.offset), (8, 16, 24));
    let rgb565 = Spec {
        bits: 16,
        bytes_per_line: 1280,
        masks: [0xf800, 0x07e0, 0x1f],
        ..XVFB_640
    };
    assert_eq!(
        parse(&build(&rgb565, |_, _| 0)).unwrap().format,
        PixelFormat::RGB565
    );
}

#[test]
fn every_truncation_is_an_error() {
    let s = Spec {
        width: 5,
        height: 3,
        bytes_per_line: 24,
        ncolors: 2,
        ..XVFB_640
    };
    let file = build(&s, |x, y| x + y);
    assert!(parse(&file).is_ok());
    // The last row needs only its pixels, not the whole stride.
    let end = file.len() - (24 - 5 * 4);
    assert!(parse(&file[..end]).is_ok());
    for len in 0..end {
        match parse(&file[..len]) {
            Err(XwdError::Truncated { need, have }) => {
                assert_eq!(have, len as u64);
                assert!(need > have);
            }
            other => panic!("{len}: {other:?}"),
        }
    }
}

#[test]
fn garbage_headers_are_errors() {
    let good = build(
        &Spec {
            width: 4,
            height: 2,
            bytes_per_line: 16,
            ..XVFB_640
        },
        |_, _| 0,
    );
    let with = |field: usize, v: u32| {
        let mut f = good.clone();
        f[field * 4..field * 4 + 4].copy_from_slice(&v.to_be_bytes());
        parse(&f)
    };
    assert_eq!(with(FILE_VERSION, 6), Err(XwdError::Version(6)));
    assert_eq!(with(HEADER_SIZE, 99), Err(XwdError::HeaderSize(99)));
    assert_eq!(with(PIXMAP_FORMAT, 1), Err(XwdError::PixmapFormat(1)));
    assert_eq!(with(BYTE_ORDER, 2), Err(XwdError::ByteOrder(2)));
    assert!(matches!(
        with(BITS_PER_PIXEL, 8),
        Err(XwdError::Pixels {
            bits_per_pixel: 8,
            ..
        })
    ));
    assert!(matches!(
        with(RED_MASK, 0xf0f0),
        Err(XwdError::Pixels { .. })
    ));
    assert!(matches!(with(GREEN_MASK, 0), Err(XwdError::Pixels { .. })));
    assert!(matches!(with(PIXMAP_WIDTH, 0), Err(XwdError::Size { .. })));
    assert!(matches!(
        with(PIXMAP_HEIGHT, 70_000),
        Err(XwdError::Size { .. })
    ));
    assert!(matches!(
        with(BYTES_PER_LINE, 15),
        Err(XwdError::Size { .. })
    ));
    assert!(matches!(
        with(NCOLORS, u32::MAX),
        Err(XwdError::Truncated { .. })
    ));
    assert!(matches!(
        with(HEADER_SIZE, u32::MAX),
        Err(XwdError::Truncated { .. })
    ));
    assert_eq!(
        with(FILE_VERSION, 6).unwrap_err().to_string(),
        "file version 6, expected 7"
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let good = build(
        &Spec {
            width: 4,
            height: 2,
            bytes_per_line: 16,
            ..XVFB_640
        },
        |_, _| 0,
    );
    for i in 0..20_000 {
        let mut f = good.clone();
        // Mostly-valid headers with a few random words reach the deeper checks.
        for _ in 0..(i % 4 + 1) {
            let word = (next() % HEADER_FIELDS as u64) as usize;
            let v = next() as u32;
            f[word * 4..word * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        f.truncate((next() % (f.len() as u64 + 1)) as usize);
        if let Ok(h) = parse(&f) {
            let end = h.data_offset
                + h.stride * usize::from(h.height - 1)
                + usize::from(h.width) * h.format.bytes_per_pixel();
            assert!(end <= f.len());
        }
    }
}

fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("thinshadow-xwd-{tag}-{}", std::process::id()))
}

#[test]
fn source_reads_pixels_and_follows_a_resize() {
    let path = temp_path("resize");
    let s = Spec {
        width: 7,
        height: 5,
        bytes_per_line: 32,
        ..XVFB_640
    };
    std::fs::write(&path, build(&s, |x, y| (x << 16) | (y << 8) | 0x42)).unwrap();
    let name = path.to_str().unwrap().to_owned();
    let mut src = Xwd::open(&name).unwrap();
    assert_eq!(src.describe(), format!("xwd:{name} 7x5 XRGB8888"));
    {
        let f = src.frame().unwrap();
        assert_eq!((f.width, f.height, f.stride), (7, 5, 32));
        let row = f.row(3).unwrap();
        assert_eq!(&row[6 * 4..7 * 4], &[0x42, 3, 6, 0]);
    }
    let bigger = Spec {
        width: 9,
        height: 6,
        bytes_per_line: 36,
        ..s
    };
    std::fs::write(&path, build(&bigger, |_, _| 0x0012_3456)).unwrap();
    {
        let f = src.frame().unwrap();
        assert_eq!((f.width, f.height), (9, 6));
        assert_eq!(&f.row(5).unwrap()[32..36], &[0x56, 0x34, 0x12, 0]);
    }
    std::fs::write(&path, b"not an xwd file").unwrap();
    let e = src.frame().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("bad xwd file {name}: truncated: needs 100 bytes, has 15")
    );
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(src.frame(), Err(SourceError::Xwd { .. })));
    std::fs::remove_file(&path).unwrap();
}

/// Needs Xvfb: `cargo test --lib xvfb -- --ignored`.
#[test]
#[ignore]
fn live_xvfb_screen() {
    use std::process::{Command, Stdio};
    let dir = temp_path("xvfb");
    std::fs::create_dir_all(&dir).unwrap();
    let mut xvfb = Command::new("Xvfb")
        .args([":57", "-screen", "0", "640x480x24", "-fbdir"])
        .arg(&dir)
        .args(["-nocursor", "-noreset", "-nolisten", "tcp"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let file = dir.join("Xvfb_screen0");
    let name = file.to_str().unwrap().to_owned();
    let mut src = (0..50)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            Xwd::open(&name).ok()
        })
        .unwrap();
    let painted = Command::new("xsetroot")
        .args(["-display", ":57", "-solid", "#123456"])
        .status();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pixel = src.frame().map(|f| f.row(10).map(|r| r[40..44].to_vec()));
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(painted.unwrap().success());
    assert_eq!(src.describe(), format!("xwd:{name} 640x480 XRGB8888"));
    assert_eq!(pixel.unwrap(), Some(vec![0x56, 0x34, 0x12, 0]));
}
