//! Exercises the in-process test client (`tests/common/client.rs`).
//!
//! The FreeRDP tests are `#[ignore]`d: they need `Xvfb`, ImageMagick's `display`, `xdotool`,
//! `xev`, `xdpyinfo`, `xrandr` and `freerdp-shadow-cli` (Debian: xvfb, imagemagick, xdotool,
//! x11-utils, x11-xserver-utils, freerdp2-shadow-x11). Run them with
//! `cargo test --test test_client -- --ignored`. They start their own Xvfb (display :61 and up)
//! and shadow server on 127.0.0.1 and stop them when done.

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

use ironrdp_pdu::mcs::{
    DisconnectProviderUltimatum, DisconnectReason, McsMessage, SendDataIndication,
};
use ironrdp_pdu::rdp::client_info::CompressionType;
use ironrdp_pdu::rdp::headers::{
    CompressionFlags, ShareControlHeader, ShareControlPdu, ShareDataHeader, ShareDataPdu,
    StreamPriority,
};
use ironrdp_pdu::rdp::server_error_info::{
    ErrorInfo, ProtocolIndependentCode, ServerSetErrorInfoPdu,
};
use ironrdp_pdu::x224::X224;
use std::borrow::Cow;

use common::client::{
    ClientConfig, ConnectError, Image, MouseButton, RunError, Security, TestClient,
    set_error_info_code,
};

#[test]
fn connect_to_closed_port_fails_fast_with_io_error() {
    // Bind, learn the port, close: nothing listens there any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = Instant::now();
    let result = TestClient::connect(&ClientConfig::new(addr, "user", "secret", Security::Tls));
    let elapsed = started.elapsed();
    match result {
        Err(ConnectError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}")
        }
        Err(e) => panic!("expected an I/O error, got {e}"),
        Ok(_) => panic!("connected to a closed port"),
    }
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn server_that_closes_during_negotiation_is_an_io_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf); // the X.224 Connection Request
        // and hang up
    });
    let result = TestClient::connect(&ClientConfig::new(addr, "user", "secret", Security::Tls));
    server.join().unwrap();
    match result {
        Err(ConnectError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
        Err(e) => panic!("expected an I/O error, got {e}"),
        Ok(_) => panic!("connected to a server that hung up"),
    }
}

/// A Set Error Info PDU as a server sends it: X.224 / MCS Send Data Indication on the I/O channel /
/// Share Control Header / Share Data Header / errorInfo.
fn set_error_info_frame(info: ErrorInfo) -> Vec<u8> {
    share_data_frame(ShareDataPdu::ServerSetErrorInfo(ServerSetErrorInfoPdu(
        info,
    )))
}

fn share_data_frame(pdu: ShareDataPdu) -> Vec<u8> {
    let share = ShareControlHeader {
        share_id: 0x1_03EA,
        pdu_source: 1002,
        share_control_pdu: ShareControlPdu::Data(ShareDataHeader {
            share_data_pdu: pdu,
            stream_priority: StreamPriority::Undefined,
            compression_flags: CompressionFlags::empty(),
            compression_type: CompressionType::K8,
        }),
    };
    let indication = SendDataIndication {
        initiator_id: 1002,
        channel_id: 1003,
        user_data: Cow::Owned(ironrdp_core::encode_vec(&share).unwrap()),
    };
    ironrdp_core::encode_vec(&X224(indication)).unwrap()
}

#[test]
fn set_error_info_code_is_read_from_real_pdus() {
    let denied = set_error_info_frame(ErrorInfo::ProtocolIndependentCode(
        ProtocolIndependentCode::ServerDeniedConnection,
    ));
    assert_eq!(set_error_info_code(&denied), Some(0x7));
    let privileges = set_error_info_frame(ErrorInfo::ProtocolIndependentCode(
        ProtocolIndependentCode::ServerInsufficientPrivileges,
    ));
    assert_eq!(set_error_info_code(&privileges), Some(0x9));
    // A code IronRDP does not know is still reported.
    let mut unknown = denied.clone();
    let n = unknown.len();
    unknown[n - 4..].copy_from_slice(&0x0000_1234u32.to_le_bytes());
    assert_eq!(set_error_info_code(&unknown), Some(0x1234));
    // Other PDUs are not mistaken for it.
    assert_eq!(
        set_error_info_code(&share_data_frame(ShareDataPdu::ShutdownDenied)),
        None
    );
    let ultimatum = ironrdp_core::encode_vec(&X224(McsMessage::DisconnectProviderUltimatum(
        DisconnectProviderUltimatum::from_reason(DisconnectReason::UserRequested),
    )))
    .unwrap();
    assert_eq!(set_error_info_code(&ultimatum), None);
    assert_eq!(set_error_info_code(&[]), None);
}

// ---------------------------------------------------------------------------------------------
// FreeRDP shadow server harness

const WIDTH: u16 = 800;
const HEIGHT: u16 = 600;
const RED: u32 = 0xFF0000;
const GREEN: u32 = 0x00FF00;
const BLUE: u32 = 0x0000FF;
const WHITE: u32 = 0xFFFFFF;

/// Children killed (by pid) and reaped on drop, plus a scratch directory.
struct Fixture {
    dir: PathBuf,
    display: String,
    children: Vec<(&'static str, Child)>,
    port: u16,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            stop(child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM (Xvfb then removes its lock file and socket), SIGKILL after 3 s; always reaped.
fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        let _ = signal::kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while let Ok(None) = child.try_wait() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.wait();
}

/// Whether an X display number is in use: a lock file naming a live process. (A lock left by a
/// dead server does not count; Xvfb replaces it.)
fn display_in_use(n: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/tmp/.X{n}-lock")) else {
        return false;
    };
    match text.trim().parse::<i32>() {
        Ok(pid) => signal::kill(Pid::from_raw(pid), None).is_ok(),
        Err(_) => true,
    }
}

fn wait_until(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn wait_for(what: &str, timeout: Duration, ok: impl FnMut() -> bool) {
    assert!(wait_until(timeout, ok), "timed out waiting for {what}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Xvfb on a free display number from 61 up and returns (number, child). Xvfb's lock
/// file holds the pid of the server that owns the display: only ours counts.
fn start_xvfb(w: u16, h: u16) -> (u32, Child) {
    static NEXT: AtomicU32 = AtomicU32::new(61);
    let screen = format!("{w}x{h}x24");
    for _ in 0..40 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        if display_in_use(n) {
            continue;
        }
        let mut xvfb = Command::new("Xvfb")
            .arg(format!(":{n}"))
            .args(["-screen", "0", &screen, "-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb");
        let pid = xvfb.id().to_string();
        let ours = || std::fs::read_to_string(&lock).is_ok_and(|p| p.trim() == pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ours() && socket.exists() {
                return (n, xvfb);
            }
            if xvfb.try_wait().unwrap().is_some() || Instant::now() > deadline {
                stop(&mut xvfb);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("could not start Xvfb on any display");
}

/// Four quadrants: red, green / blue, white.
fn quadrant(x: u16, y: u16) -> u32 {
    match (x < WIDTH / 2, y < HEIGHT / 2) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => WHITE,
    }
}

fn write_picture(path: &Path) {
    let mut ppm = format!("P6\n{WIDTH} {HEIGHT}\n255\n").into_bytes();
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let c = quadrant(x, y);
            ppm.extend_from_slice(&[(c >> 16) as u8, (c >> 8) as u8, c as u8]);
        }
    }
    std::fs::write(path, ppm).unwrap();
}

fn x_command(display: &str, program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("DISPLAY", display).stdin(Stdio::null());
    cmd
}

/// Xvfb with the quadrant picture on the root window, and `freerdp-shadow-cli` on 127.0.0.1 with
/// extra arguments from `shadow_args(scratch_dir)`.
fn start_shadow(shadow_args: impl FnOnce(&Path) -> Vec<String>) -> Fixture {
    start_shadow_on_screen(WIDTH, HEIGHT, shadow_args)
}

/// As `start_shadow`, on an X screen of `screen_w` x `screen_h` (the maximum RandR size) set to
/// WIDTH x HEIGHT before the server starts.
fn start_shadow_on_screen(
    screen_w: u16,
    screen_h: u16,
    shadow_args: impl FnOnce(&Path) -> Vec<String>,
) -> Fixture {
    let (n, xvfb) = start_xvfb(screen_w, screen_h);
    let dir =
        std::env::temp_dir().join(format!("thinshadow-test-client-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut fx = Fixture {
        dir,
        display: format!(":{n}"),
        children: vec![("Xvfb", xvfb)],
        port: free_port(),
    };

    if (screen_w, screen_h) != (WIDTH, HEIGHT) {
        fx.resize(WIDTH, HEIGHT);
    }

    let picture = fx.dir.join("quadrants.ppm");
    write_picture(&picture);
    // Sets the root window background and exits (with status 1 even when it worked).
    let mut display = x_command(&fx.display, "display")
        .args(["-window", "root"])
        .arg(&picture)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ImageMagick display");
    let painted = wait_until(Duration::from_secs(20), || {
        display.try_wait().unwrap().is_some()
    });
    if !painted {
        stop(&mut display);
        panic!("ImageMagick display did not finish");
    }

    let log = std::fs::File::create(fx.dir.join("shadow.log")).unwrap();
    let port_arg = format!("/port:{}", fx.port);
    let shadow = x_command(&fx.display, "freerdp-shadow-cli")
        .args([port_arg.as_str(), "/bind-address:127.0.0.1"])
        .args(shadow_args(&fx.dir))
        .env("HOME", &fx.dir)
        .env("XDG_CONFIG_HOME", &fx.dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("freerdp-shadow-cli");
    fx.children.push(("freerdp-shadow-cli", shadow));
    let addr = fx.addr();
    wait_for(
        "freerdp-shadow-cli to listen",
        Duration::from_secs(10),
        || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
    );
    fx
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn config(&self, security: Security, user: &str, password: &str) -> ClientConfig {
        ClientConfig {
            width: WIDTH,
            height: HEIGHT,
            ..ClientConfig::new(self.addr(), user, password, security)
        }
    }

    /// The X pointer position, from `xdotool getmouselocation --shell`.
    fn pointer(&self) -> (u16, u16) {
        let out = x_command(&self.display, "xdotool")
            .args(["getmouselocation", "--shell"])
            .output()
            .expect("xdotool");
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |key: &str| -> u16 {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {text:?}"))
        };
        (get("X="), get("Y="))
    }

    /// Resizes the X screen with `xrandr --fb` (it complains when the output no longer fits, but
    /// the screen size changes).
    fn resize(&self, w: u16, h: u16) {
        let fb = format!("{w}x{h}");
        let _ = x_command(&self.display, "xrandr")
            .args(["--fb", fb.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("xrandr");
        let want = format!("dimensions:    {w}x{h} pixels");
        wait_for("the X screen to resize", Duration::from_secs(5), || {
            let out = x_command(&self.display, "xdpyinfo")
                .output()
                .expect("xdpyinfo");
            String::from_utf8_lossy(&out.stdout).contains(&want)
        });
    }

    fn shadow_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("shadow.log")).unwrap_or_default()
    }
}

fn has_quadrants(img: &Image) -> bool {
    let (w, h) = (img.width(), img.height());
    w == WIDTH
        && h == HEIGHT
        && [
            (10, 10),
            (w - 10, 10),
            (10, h - 10),
            (w - 10, h - 10),
            (w / 4, h / 4),
            (3 * w / 4, 3 * h / 4),
        ]
        .iter()
        .all(|&(x, y)| img.pixel(x, y) == quadrant(x, y))
}

fn connect_and_see_picture(
    fx: &Fixture,
    security: Security,
    user: &str,
    password: &str,
) -> TestClient {
    let started = Instant::now();
    let mut client = TestClient::connect(&fx.config(security, user, password))
        .unwrap_or_else(|e| panic!("connect: {e}\nshadow log:\n{}", fx.shadow_log()));
    assert_eq!(client.desktop_size(), (WIDTH, HEIGHT));
    let seen = client.run_until(Duration::from_secs(20), has_quadrants);
    if let Err(e) = seen {
        let path = std::env::temp_dir().join("thinshadow-test-client-last.ppm");
        let _ = client.image().save_ppm(&path);
        panic!("picture not seen: {e} (image saved to {})", path.display());
    }
    eprintln!(
        "{security:?}: connected and saw the picture in {:?}",
        started.elapsed()
    );
    // Every pixel, not just the samples.
    let img = client.image();
    let wrong = (0..HEIGHT)
        .flat_map(|y| (0..WIDTH).map(move |x| (x, y)))
        .filter(|&(x, y)| img.pixel(x, y) != quadrant(x, y))
        .count();
    eprintln!("{wrong} pixels differ");
    // The shadow server draws its own cursor into the frame: allow that little.
    assert!(wrong < 32 * 32, "{wrong} pixels differ from the picture");
    let stats = client.stats();
    eprintln!("{stats:#?}");
    // Plain bitmap updates, as the client asked for (no codecs advertised).
    assert!(stats.bitmap_rects > 0, "{stats:?}");
    assert_eq!(stats.surface_commands, 0, "{stats:?}");
    assert_eq!(stats.malformed_bitmaps, 0, "{stats:?}");
    client
}

#[test]
#[ignore = "needs Xvfb, ImageMagick, xdotool, xev and freerdp-shadow-cli"]
fn freerdp_shadow_tls_picture_input_disconnect() {
    let fx = start_shadow(|_| vec!["-auth".into(), "/sec:tls".into()]);
    let mut client = connect_and_see_picture(&fx, Security::Tls, "tester", "anything");
    assert_eq!(client.early_fast_path_frames(), 0);

    // Mouse: the X pointer follows.
    client.send_mouse_move(123, 234).unwrap();
    client.pump_for(Duration::from_millis(300)).unwrap();
    wait_for("the X pointer to move", Duration::from_secs(5), || {
        fx.pointer() == (123, 234)
    });
    client.send_mouse_move(700, 500).unwrap();
    wait_for(
        "the X pointer to move again",
        Duration::from_secs(5),
        || fx.pointer() == (700, 500),
    );

    // Keyboard: xev on the root window sees the key (no window manager: focus follows the pointer
    // root). Scancode 0x1E is A, X keycode 38.
    let mut xev = x_command(&fx.display, "xev")
        .args(["-root", "-event", "keyboard"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("xev");
    let stdout = xev.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500)); // let xev select its events
    client.send_sync(false, false, false).unwrap();
    client.send_key(0x1E, false, true).unwrap();
    client.send_key(0x1E, false, false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut lines = Vec::new();
    let mut saw = (false, false);
    while saw != (true, true) && Instant::now() < deadline {
        client.pump_for(Duration::from_millis(100)).unwrap();
        while let Ok(line) = rx.try_recv() {
            lines.push(line);
        }
        let text = lines.join("\n");
        saw = (
            text.contains("KeyPress event") && text.contains("keycode 38"),
            text.contains("KeyRelease event"),
        );
    }
    stop(&mut xev);
    assert_eq!(
        saw,
        (true, true),
        "xev did not see A pressed and released:\n{}",
        lines.join("\n")
    );

    // The rest must at least not upset the server.
    client.send_unicode(u16::from(b'z'), true).unwrap();
    client.send_unicode(u16::from(b'z'), false).unwrap();
    client
        .send_mouse_button(MouseButton::Left, true, 700, 500)
        .unwrap();
    client
        .send_mouse_button(MouseButton::Left, false, 700, 500)
        .unwrap();
    client.send_wheel(true, 120).unwrap();
    client.send_wheel(true, -120).unwrap();
    client.send_wheel(false, 120).unwrap();
    client.pump_for(Duration::from_millis(500)).unwrap();
    assert_eq!(client.last_error_info(), None);

    let reply = client.disconnect();
    eprintln!("disconnect: {reply:?}");

    // The server is still fine: a second session sees the picture too.
    let second = connect_and_see_picture(&fx, Security::Tls, "tester", "anything");
    let reply = second.disconnect();
    eprintln!("disconnect: {reply:?}");
}

/// SAM file line for FreeRDP's NTLM (user:domain:LM hash:NT hash:::); the NT hash is MD4 of the
/// UTF-16LE password "Passw0rd!".
const SAM_USER: &str = "tester";
const SAM_PASSWORD: &str = "Passw0rd!";
const SAM_NT_HASH: &str = "fc525c9683e8fe067095ba2ddc971889";

fn start_shadow_nla() -> Fixture {
    start_shadow(|dir| {
        let sam = dir.join("sam");
        std::fs::write(&sam, format!("{SAM_USER}:::{SAM_NT_HASH}:::\n")).unwrap();
        vec![
            "-auth".into(),
            "/sec:nla".into(),
            format!("/sam-file:{}", sam.display()),
        ]
    })
}

#[test]
#[ignore = "needs Xvfb, ImageMagick, xdotool, xev and freerdp-shadow-cli"]
fn freerdp_shadow_nla_good_and_bad_password() {
    let fx = start_shadow_nla();
    let client = connect_and_see_picture(&fx, Security::Nla, SAM_USER, SAM_PASSWORD);
    client.disconnect();

    match TestClient::connect(&fx.config(Security::Nla, SAM_USER, "wrong-password")) {
        Err(e) => {
            eprintln!("wrong password: {e}");
            assert!(e.is_auth_failure(), "expected an auth failure, got {e}");
        }
        Ok(_) => panic!("connected with a wrong password"),
    }

    // TLS-only against an NLA-only server: a negotiation failure, not an auth failure.
    match TestClient::connect(&fx.config(Security::Tls, SAM_USER, SAM_PASSWORD)) {
        Err(e @ ConnectError::Refused { .. }) => eprintln!("TLS to an NLA server: {e}"),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("connected with TLS to an NLA-only server"),
    }
}

#[test]
#[ignore = "needs Xvfb, ImageMagick, xdotool, xev and freerdp-shadow-cli"]
fn freerdp_shadow_server_killed_mid_session() {
    let mut fx = start_shadow(|_| vec!["-auth".into(), "/sec:tls".into()]);
    let mut client = connect_and_see_picture(&fx, Security::Tls, "tester", "x");
    let (_, shadow) = fx
        .children
        .iter_mut()
        .find(|(name, _)| *name == "freerdp-shadow-cli")
        .unwrap();
    shadow.kill().unwrap();
    shadow.wait().unwrap();
    match client.run_until(Duration::from_secs(5), |_| false) {
        Err(RunError::Io { kind, .. }) => eprintln!("server killed: {kind:?}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // Further calls report the same end without blocking.
    assert!(matches!(
        client.run_until(Duration::from_secs(5), |_| true),
        Err(RunError::Io { .. })
    ));
    client.disconnect();
}

#[test]
#[ignore = "needs Xvfb, ImageMagick, xrandr, xdpyinfo and freerdp-shadow-cli"]
fn freerdp_shadow_resize_is_followed() {
    let fx = start_shadow_on_screen(1024, 768, |_| vec!["-auth".into(), "/sec:tls".into()]);
    let mut client = connect_and_see_picture(&fx, Security::Tls, "tester", "x");
    fx.resize(1024, 768);
    let resized = client.run_until(Duration::from_secs(20), |img| {
        (img.width(), img.height()) == (1024, 768)
    });
    eprintln!(
        "resize: {resized:?}, reactivations {}",
        client.reactivations()
    );
    resized.unwrap();
    assert_eq!(client.desktop_size(), (1024, 768));
    // X tiles the root background picture over the larger screen.
    let tiled = client.run_until(Duration::from_secs(20), |img| {
        [(10, 10), (790, 590), (1000, 700), (850, 10), (10, 700)]
            .iter()
            .all(|&(x, y)| img.pixel(x, y) == quadrant(x % WIDTH, y % HEIGHT))
    });
    if tiled.is_err() {
        client.image().save_ppm("/tmp/resized.ppm").unwrap();
    }
    tiled.unwrap();
    client.disconnect();
}
