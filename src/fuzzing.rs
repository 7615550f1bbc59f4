//! Entry points for the fuzz targets in `fuzz/` and their regression replay in
//! `tests/it/fuzz_regressions.rs`: one function per target, bytes in, nothing out.
//!
//! Each one drives a parser or core the way the agent does and panics only when an invariant
//! the agent relies on breaks (a frame length past the buffer, a key left pressed after
//! `release_all`, a request that does not survive its own round trip). Bad input must come
//! back as an error, never as a panic, hang or unbounded allocation.

use std::path::Path;

use ironrdp_pdu::fast_path::UpdateCode;

use crate::control::{LineReader, MAX_LINE, Request, json};
use crate::input::translate::{EV_ABS, EV_KEY, Output, PRESSED, RELEASED, Translator};
use crate::input::{InputEvent, MouseButton};
use crate::rdp::{Connection, Event, MAX_FRAME, Settings};

/// No log lines while fuzzing: a warning per rejected input would cost more than the parse.
fn quiet() {
    crate::log::silence();
}

fn settings() -> Settings {
    Settings {
        user: "admin".into(),
        password: "fuzzing-password".into(),
        server_public_key: vec![4; 65],
        width: 1024,
        height: 768,
    }
}

/// X.224 Connection Requests that move a fresh connection past negotiation, so the rest of
/// the input reaches CredSSP (NLA) or the MCS and capability exchange (TLS security).
const REQUEST_NLA: [u8; 19] = [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 3, 0, 0, 0];
const REQUEST_TLS: [u8; 19] = [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 1, 0, 0, 0];

/// Feeds `data` to `conn` in pieces whose sizes come from `sizes`, as reads would.
fn feed(conn: &mut Connection, data: &[u8], sizes: &[u8]) {
    let (mut out, mut events) = (Vec::new(), Vec::new());
    let mut rest = data;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().map_or(rest.len(), |&s| usize::from(s).max(1));
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        out.clear();
        events.clear();
        let result = conn.receive(piece, &mut out, &mut events);
        // Whatever is left unframed is at most one frame (plus one read before processing).
        assert!(
            conn.buffered() <= MAX_FRAME + piece.len(),
            "input buffer past its bound"
        );
        if events.contains(&Event::UpgradeToTls) {
            // The agent hands these to rustls; here the stream simply goes on in the clear.
            let leftover = conn.take_leftover();
            if !leftover.is_empty() && conn.receive(&leftover, &mut out, &mut events).is_err() {
                return;
            }
        }
        if result.is_err() {
            assert!(conn.is_closed(), "an error must close the connection");
            return;
        }
    }
}

/// A fresh connection fed arbitrary bytes: the first byte picks the starting point (raw,
/// after an NLA negotiation, after a TLS-security negotiation), the second the read size.
pub fn rdp_handshake(data: &[u8]) {
    quiet();
    let [mode, size, rest @ ..] = data else {
        return;
    };
    let mut conn = Connection::new(settings());
    match mode % 3 {
        1 => feed(&mut conn, &REQUEST_NLA, &[]),
        2 => feed(&mut conn, &REQUEST_TLS, &[]),
        _ => {}
    }
    if conn.is_closed() {
        return;
    }
    feed(&mut conn, rest, &[*size]);
}

/// An active session (handshake done, channels joined) fed arbitrary fast-path and
/// slow-path PDUs; the first byte is the read size.
pub fn rdp_active(data: &[u8]) {
    quiet();
    let [size, rest @ ..] = data else {
        return;
    };
    let mut conn = Connection::active_for_fuzzing(settings());
    feed(&mut conn, rest, &[*size]);
}

/// The framing of TPKT/fast-path and CredSSP TsRequest: a length is whole, non-zero and bounded.
pub fn pdu_framing(data: &[u8]) {
    quiet();
    if let Ok(Some((_, len))) = crate::rdp::frame_len(data) {
        assert!(len > 0 && len <= MAX_FRAME && len <= data.len());
    }
    if let Ok(Some(len)) = crate::rdp::credssp_frame_len(data) {
        // The caller checks this one against MAX_FRAME before buffering.
        let _ = len;
    }
}

/// The control socket: a byte stream split into capped lines, each parsed as a request.
/// A parsed request must come back the same through its own line form.
pub fn control(data: &[u8]) {
    quiet();
    let mut reader = LineReader::new(MAX_LINE);
    for chunk in data.chunks(512) {
        reader.feed(chunk);
        while let Some(line) = reader.next_line() {
            let Ok(line) = line else {
                return;
            };
            if let Ok(request) = Request::parse(&line) {
                let again = Request::parse(&request.to_line());
                assert_eq!(again.ok(), Some(request), "request round trip");
            }
        }
        assert!(
            reader.pending() <= MAX_LINE + chunk.len(),
            "line buffer past its bound"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = json::parse_object(text);
    }
}

/// The persisted state: the whole file, and any payload behind a valid frame.
pub fn state_blob(data: &[u8]) {
    quiet();
    let _ = crate::state::decode(data);
    for version in crate::state::READABLE {
        if let Ok(state) = crate::state::decode(&crate::state::blob::wrap(version, data)) {
            // What decodes must encode and decode to the same state.
            let again = crate::state::decode(&crate::state::encode(&state));
            assert!(again.ok() == Some(state), "state round trip");
        }
    }
}

/// The settings file, and each flag's value parser (first byte picks the flag).
pub fn config(data: &[u8]) {
    quiet();
    let [pick, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    use crate::config::{KEYS, Settings, flag_entry, parse_file};
    if let Ok(entries) = parse_file(Path::new("fuzz.toml"), text) {
        let _ = Settings::from_entries(entries);
    }
    let key = &KEYS[usize::from(*pick) % KEYS.len()];
    let _ = Settings::from_entries(vec![flag_entry(key, text)]);
}

/// Admin input through the translator: six bytes per event, with screen resizes and LED
/// feedback mixed in. Checks that positions stay on the axis, that key state in the output
/// is consistent, and that `release_all` leaves nothing pressed.
pub fn input(data: &[u8]) {
    quiet();
    let mut translator = Translator::new(1024, 768);
    let mut out = Output::default();
    let mut down: Vec<u16> = Vec::new();
    for e in data.chunks_exact(6) {
        let (a, b) = (
            u16::from_le_bytes([e[2], e[3]]),
            u16::from_le_bytes([e[4], e[5]]),
        );
        let pressed = e[1] & 1 != 0;
        let event = match e[0] % 9 {
            0 | 1 => InputEvent::Key {
                scancode: e[2],
                extended: e[1] & 2 != 0,
                extended1: e[1] & 4 != 0,
                pressed,
            },
            2 => InputEvent::Unicode { code: a, pressed },
            3 => InputEvent::Sync {
                scroll: e[1] & 2 != 0,
                num: e[1] & 4 != 0,
                caps: e[1] & 8 != 0,
                kana: e[1] & 16 != 0,
            },
            4 => InputEvent::MouseMove { x: a, y: b },
            5 => InputEvent::MouseButton {
                button: [
                    MouseButton::Left,
                    MouseButton::Right,
                    MouseButton::Middle,
                    MouseButton::Extra1,
                    MouseButton::Extra2,
                ][usize::from(e[1] >> 1) % 5],
                pressed,
                x: a,
                y: b,
            },
            6 => InputEvent::Wheel {
                vertical: e[1] & 2 != 0,
                delta: a as i16,
            },
            7 => {
                translator.set_screen_size(a, b);
                continue;
            }
            _ => {
                translator.led_feedback(a, pressed);
                continue;
            }
        };
        translator.handle(event, &mut out);
        check_output(&translator, &out, &mut down);
        out.clear();
    }
    translator.release_all(&mut out);
    check_output(&translator, &out, &mut down);
    assert!(
        down.is_empty(),
        "keys left pressed after release_all: {down:?}"
    );
    assert!(translator.pressed_keys().is_empty() && translator.pressed_buttons().is_empty());
}

fn check_output(translator: &Translator, out: &Output, down: &mut Vec<u16>) {
    let (max_x, max_y) = translator.axis_max();
    for event in out.keyboard.iter().chain(&out.pointer) {
        match event.kind {
            EV_ABS if event.code == 0 => assert!((0..=max_x).contains(&event.value)),
            EV_ABS if event.code == 1 => assert!((0..=max_y).contains(&event.value)),
            EV_KEY if event.value == PRESSED => {
                assert!(
                    !down.contains(&event.code),
                    "key {} pressed twice",
                    event.code
                );
                down.push(event.code);
            }
            EV_KEY if event.value == RELEASED => {
                let index = down.iter().position(|&k| k == event.code);
                assert!(index.is_some(), "key {} released but not down", event.code);
                down.retain(|&k| k != event.code);
            }
            _ => {}
        }
    }
}

/// Most bytes one `bulk` input expands to: the 64 KB histories of MPPC and NCRUSH wrap 32 times.
const BULK_STREAM_MAX: usize = 2 << 20;

/// Bitmap updates through the agent's fragmenting and bulk compression, one compressor for the
/// whole input as for a connection, each decompressed as the client would: every update must
/// come back byte for byte. Input: the client's compression type, how often the body repeats,
/// how many update lengths follow (u16 each, cycled), then the body. Each repetition flips a
/// few bytes so it is not one long match.
pub fn bulk(data: &[u8]) {
    use ironrdp_pdu::rdp::client_info::CompressionType;
    let [pick, repeat, lengths, rest @ ..] = data else {
        return;
    };
    let kind = [
        CompressionType::K64,
        CompressionType::Rdp6,
        CompressionType::Rdp61,
    ][usize::from(*pick) % 3];
    let (lengths, body) = rest.split_at(rest.len().min(2 * usize::from(*lengths)));
    if body.is_empty() {
        return;
    }
    // Up to 64 rounds: a 2 KB input already wraps the history, and runs stay fast.
    let total = (body.len() * (1 + usize::from(*repeat % 64))).min(BULK_STREAM_MAX);
    let stream: Vec<u8> = (0..total)
        .map(|i| {
            let round = i / body.len();
            let byte = body[i % body.len()];
            if (i + round) % 53 == 0 {
                byte ^ round as u8
            } else {
                byte
            }
        })
        .collect();
    let mut lengths = lengths
        .chunks_exact(2)
        .map(|l| {
            usize::from(u16::from_le_bytes([l[0], l[1]])) % crate::screen::DEFAULT_MAX_UPDATE_LEN
                + 1
        })
        .collect::<Vec<_>>()
        .into_iter()
        .cycle();

    let mut compressor = crate::screen::Bulk::for_client(kind);
    let mut client = ironrdp_bulk::BulkCompressor::new(match kind {
        CompressionType::K64 => ironrdp_bulk::CompressionType::Rdp5,
        _ => ironrdp_bulk::CompressionType::Rdp6,
    });
    let mut out = Vec::new();
    let mut rest = &stream[..];
    while !rest.is_empty() {
        let len = lengths
            .next()
            .unwrap_or(crate::screen::MAX_FRAGMENT_PAYLOAD);
        let (update, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        out.clear();
        if crate::screen::fragment(update, compressor.as_mut(), UpdateCode::Bitmap, &mut out)
            .is_err()
        {
            // What the agent does: the rest of the connection goes uncompressed.
            compressor = None;
            out.clear();
            crate::screen::fragment(update, None, UpdateCode::Bitmap, &mut out)
                .expect("plain fragments");
        }
        assert!(reassemble(&out, &mut client) == update, "update round trip");
    }
}

/// The client's side of `bulk`: fast-path PDUs to the one update they carry.
fn reassemble(bytes: &[u8], client: &mut ironrdp_bulk::BulkCompressor) -> Vec<u8> {
    use ironrdp_core::{ReadCursor, decode_cursor};
    use ironrdp_pdu::fast_path::{FastPathHeader, FastPathUpdatePdu};
    let mut cursor = ReadCursor::new(bytes);
    let mut update = Vec::new();
    while !cursor.is_empty() {
        let _: FastPathHeader = decode_cursor(&mut cursor).expect("fast-path header");
        let pdu: FastPathUpdatePdu<'_> = decode_cursor(&mut cursor).expect("fast-path update");
        assert!(pdu.data.len() <= crate::screen::MAX_FRAGMENT_PAYLOAD);
        match pdu.compression_flags {
            None => update.extend_from_slice(pdu.data),
            Some(flags) => {
                let kind = pdu.compression_type.expect("compression type").as_u8();
                let plain = client
                    .decompress(pdu.data, u32::from(flags.bits() | kind))
                    .expect("the client expands what the agent compressed");
                assert!(plain.len() <= crate::screen::MAX_FRAGMENT_PAYLOAD);
                update.extend_from_slice(plain);
            }
        }
    }
    update
}

/// What one `credssp` run came to (the regression test asserts it).
#[derive(Debug, PartialEq, Eq)]
pub enum CredsspRun {
    TooShort,
    /// Refused before the client's AUTHENTICATE.
    Protocol,
    LoginFailed,
    LoggedIn,
}

/// NLA as a real client plays it (bare NTLM or one of the SPNEGO shapes, CredSSP 2 to 6,
/// the right password), with the fuzz input choosing what to break after the NTLM proof:
/// the MIC, the mechListMIC, the session key, pubKeyAuth and authInfo (replaced by input
/// bytes of any length), a byte of the AUTHENTICATE or of any TSRequest on the wire.
///
/// Bytes: shape, version, knobs, a, b, then the replacement bytes (split at `a`).
pub fn credssp(data: &[u8]) -> CredsspRun {
    use crate::rdp::credssp::{Credssp, CredsspError, Step};
    use crate::rdp::nla::client::{Client, Shape};
    quiet();
    let [shape, version, knobs, a, b, rest @ ..] = data else {
        return CredsspRun::TooShort;
    };
    let shape = [
        Shape::Bare,
        Shape::SpnegoNtlm,
        Shape::SpnegoNegoexFirst,
        Shape::SpnegoKerberosFirst,
    ][usize::from(*shape % 4)];
    let s = settings();
    let mut client = Client::new(
        "Admin",
        &s.password,
        &s.server_public_key,
        2 + u32::from(*version % 5),
        shape,
    );
    let bit = |n: u8| knobs & (1 << n) != 0;
    let split = usize::from(*a).min(rest.len());
    let (first, second) = rest.split_at(split);
    let t = &mut client.tweaks;
    t.no_mic = bit(0);
    t.wrong_mic = bit(1);
    t.wrong_mech_list_mic = bit(2);
    t.no_mech_list_mic = bit(3);
    t.no_key_exch = bit(4);
    t.pub_key_auth = bit(5).then(|| first.to_vec());
    t.auth_info = bit(6).then(|| second.to_vec());
    // The high bit: flip a byte of the AUTHENTICATE, or (with bit 4 of b) of a whole request.
    let flip_wire = bit(7) && b & 0x10 != 0;
    if bit(7) && !flip_wire {
        t.flip_authenticate = Some((usize::from(*a) * 7 + usize::from(*b), b | 1));
    }
    // A pubKeyAuth or authInfo under 16 bytes cannot even hold a signature (finding 1).
    // (A wrong MIC only counts when one is sent: not with `no_mic`, nor bare or without a list MIC.)
    // A flipped byte may undo the wrong MIC, so those count only without flips.
    let flips = bit(7);
    let must_fail = (t.wrong_mic && !t.no_mic && !flips)
        || (t.wrong_mech_list_mic && !t.no_mech_list_mic && shape != Shape::Bare && !flips)
        || t.pub_key_auth.as_ref().is_some_and(|p| p.len() < 16)
        || t.auth_info.as_ref().is_some_and(|p| p.len() < 16);
    let mut challenged = false;

    let mut server = Credssp::with_challenge(
        &s.user,
        &s.password,
        s.server_public_key.clone(),
        "fuzz",
        [0x11; 8],
        0x01db_0000_0000_0000,
    );
    let mut request = client.first();
    for round in 0..6u8 {
        if flip_wire && round == b & 3 {
            let len = request.len();
            if let Some(byte) = request.get_mut((usize::from(*a) * 3) % len.max(1)) {
                *byte ^= 0x5a;
            }
        }
        let mut out = Vec::new();
        match server.step(&request, &mut out) {
            Ok(Step::Continue) => {}
            Ok(Step::Done) => {
                assert!(!must_fail, "logged in with a broken MIC or pubKeyAuth");
                return CredsspRun::LoggedIn;
            }
            Err(CredsspError::LogonFailed) => {
                assert!(!out.is_empty(), "a failed login is answered (errorCode)");
                return CredsspRun::LoginFailed;
            }
            Err(CredsspError::Protocol(_)) => {
                // Only before our CHALLENGE: after it, every failure counts as a login.
                assert!(
                    !challenged,
                    "a protocol error after the CHALLENGE (round {round})"
                );
                return CredsspRun::Protocol;
            }
        }
        challenged |= out.windows(12).any(|w| w == b"NTLMSSP\0\x02\0\0\0");
        match client.next(&out) {
            Ok(next) => request = next,
            // The client gives up on a reply the flipped bytes made it dislike.
            Err(_) => return CredsspRun::Protocol,
        }
    }
    panic!("CredSSP did not end in six rounds");
}
