use super::*;

fn field(offset: u32, length: u32) -> FbBitfield {
    FbBitfield {
        offset,
        length,
        msb_right: 0,
    }
}

/// What virtio_gpudrmfb reports at 1024x768.
fn xrgb(w: u32, h: u32) -> (FbVarScreeninfo, FbFixScreeninfo) {
    let var = FbVarScreeninfo {
        xres: w,
        yres: h,
        xres_virtual: w,
        yres_virtual: h,
        bits_per_pixel: 32,
        red: field(16, 8),
        green: field(8, 8),
        blue: field(0, 8),
        ..Default::default()
    };
    let fix = FbFixScreeninfo {
        smem_len: w * h * 4,
        visual: FB_VISUAL_TRUECOLOR,
        line_length: w * 4,
        ..Default::default()
    };
    (var, fix)
}

#[test]
fn kernel_struct_sizes() {
    assert_eq!(size_of::<FbVarScreeninfo>(), 160);
    let fix = if size_of::<nix::libc::c_ulong>() == 8 {
        80
    } else {
        68
    };
    assert_eq!(size_of::<FbFixScreeninfo>(), fix);
}

#[test]
fn xrgb8888_layout() {
    let (var, fix) = xrgb(1024, 768);
    let l = layout("/dev/fb0", &var, &fix).unwrap();
    assert_eq!(
        l,
        Layout {
            width: 1024,
            height: 768,
            stride: 4096,
            offset: 0,
            format: PixelFormat::XRGB8888,
            map_len: 4096 * 768
        }
    );
}

#[test]
fn rgb565_with_padded_lines_and_panning() {
    let (mut var, mut fix) = xrgb(800, 600);
    var.bits_per_pixel = 16;
    var.red = field(11, 5);
    var.green = field(5, 6);
    var.blue = field(0, 5);
    var.yres_virtual = 1200;
    var.yoffset = 600;
    fix.line_length = 1664;
    fix.smem_len = 1664 * 1200;
    let l = layout("/dev/fb0", &var, &fix).unwrap();
    assert_eq!(l.format, PixelFormat::RGB565);
    assert_eq!(
        (l.stride, l.offset, l.map_len),
        (1664, 1664 * 600, 1664 * 1200)
    );
}

#[test]
fn bgr_bitfields_are_honoured() {
    let (mut var, fix) = xrgb(640, 480);
    var.red = field(0, 8);
    var.blue = field(16, 8);
    let f = layout("/dev/fb0", &var, &fix).unwrap().format;
    assert_eq!((f.red.offset, f.blue.offset), (0, 16));
}

#[test]
fn zero_line_length_and_smem_fall_back_to_virtual_size() {
    let (var, mut fix) = xrgb(640, 480);
    fix.line_length = 0;
    fix.smem_len = 0;
    let l = layout("/dev/fb0", &var, &fix).unwrap();
    assert_eq!((l.stride, l.map_len), (2560, 2560 * 480));
}

#[test]
fn other_depths_and_visuals_are_refused_clearly() {
    let (mut var, mut fix) = xrgb(640, 480);
    var.bits_per_pixel = 8;
    var.red = field(0, 8);
    var.green = field(0, 8);
    var.blue = field(0, 8);
    let e = layout("/dev/fb0", &var, &fix).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported pixel format on /dev/fb0: 8bpp r0:8 g0:8 b0:8 \
         (need 16, 24 or 32 bits per pixel with rgb bitfields)"
    );
    let (mut var, _) = xrgb(640, 480);
    var.grayscale = 0x5659_5559; // a FOURCC
    assert!(matches!(
        layout("/dev/fb0", &var, &fix),
        Err(SourceError::Format { .. })
    ));
    let (mut var, _) = xrgb(640, 480);
    var.red.msb_right = 1;
    assert!(matches!(
        layout("/dev/fb0", &var, &fix),
        Err(SourceError::Format { .. })
    ));
    let (var, _) = xrgb(640, 480);
    fix.visual = 3; // pseudocolour
    assert_eq!(
        layout("/dev/fb0", &var, &fix).unwrap_err().to_string(),
        "/dev/fb0 is not a true-colour framebuffer (visual 3)"
    );
}

#[test]
fn geometry_that_does_not_fit_is_refused() {
    let (var, mut fix) = xrgb(1024, 768);
    fix.smem_len -= 1;
    let e = layout("/dev/fb0", &var, &fix).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/dev/fb0: a 1024x768 picture with 4096 bytes a line needs 3145728 bytes, only 3145727 are there"
    );
    let (mut var, fix) = xrgb(1024, 768);
    var.yoffset = 1;
    assert!(matches!(
        layout("/dev/fb0", &var, &fix),
        Err(SourceError::Geometry { .. })
    ));
    let (var, mut fix) = xrgb(1024, 768);
    fix.line_length = 4000;
    assert!(matches!(
        layout("/dev/fb0", &var, &fix),
        Err(SourceError::Geometry { .. })
    ));
    let (mut var, fix) = xrgb(1024, 768);
    var.xres = 70_000;
    assert!(matches!(
        layout("/dev/fb0", &var, &fix),
        Err(SourceError::Geometry { .. })
    ));
    let (mut var, fix) = xrgb(1024, 768);
    var.yres = 0;
    assert!(matches!(
        layout("/dev/fb0", &var, &fix),
        Err(SourceError::Geometry { .. })
    ));
}
