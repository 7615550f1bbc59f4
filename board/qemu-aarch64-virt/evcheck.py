#!/usr/bin/env python3
"""Decode and check evdev records read from the guest's /dev/input/eventN (standard library only).

  evcheck.py dump FILE                     print every record
  evcheck.py keys FILE CODE...             every CODE is pressed (value 1) and then released (value 0),
                                           the presses in the given order
  evcheck.py pointer FILE X Y [TOL]        BTN_LEFT pressed then released, and the pointer's absolute
                                           position when it was pressed is within TOL (default 1) of X,Y

FILE holds raw `struct input_event` records as an aarch64 (or any 64-bit) kernel writes them: 24 bytes,
little-endian: struct timeval (2 x 64 bit), u16 type, u16 code, s32 value. "-" reads stdin.
The checks print one summary line (and the records, one per line, indented) and exit 0 or 1.
"""
import struct
import sys

RECORD = struct.Struct("<qqHHi")
EV_SYN, EV_KEY, EV_REL, EV_ABS, EV_MSC, EV_LED = 0, 1, 2, 3, 4, 0x11
TYPES = {EV_SYN: "SYN", EV_KEY: "KEY", EV_REL: "REL", EV_ABS: "ABS", EV_MSC: "MSC", EV_LED: "LED"}
ABS_X, ABS_Y = 0, 1
BTN_LEFT = 272
NAMES = {
    (EV_KEY, 30): "KEY_A", (EV_KEY, 48): "KEY_B", (EV_KEY, 69): "KEY_NUMLOCK",
    (EV_KEY, 58): "KEY_CAPSLOCK", (EV_KEY, 70): "KEY_SCROLLLOCK",
    (EV_KEY, 272): "BTN_LEFT", (EV_KEY, 273): "BTN_RIGHT", (EV_KEY, 274): "BTN_MIDDLE",
    (EV_ABS, 0): "ABS_X", (EV_ABS, 1): "ABS_Y", (EV_SYN, 0): "SYN_REPORT",
    (EV_REL, 8): "REL_WHEEL", (EV_REL, 11): "REL_WHEEL_HI_RES",
}


def read(path):
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    if len(data) % RECORD.size:
        raise SystemExit(f"evcheck: {len(data)} bytes is not a whole number of {RECORD.size}-byte records")
    return [RECORD.unpack_from(data, off) for off in range(0, len(data), RECORD.size)]


def fmt(rec):
    sec, usec, typ, code, value = rec
    name = NAMES.get((typ, code), str(code))
    return f"{sec}.{usec:06d} {TYPES.get(typ, typ)} {name} {value}"


def show(records, skip_syn=True):
    for r in records:
        if skip_syn and r[2] == EV_SYN:
            continue
        print("    " + fmt(r))


def keys(records, codes):
    # Walk the key events once: each wanted code must go down, then up, in the given order.
    key_events = [(r[3], r[4]) for r in records if r[2] == EV_KEY]
    pos = 0
    for code in codes:
        try:
            down = key_events.index((code, 1), pos)
            key_events.index((code, 0), down + 1)
        except ValueError:
            return False, f"no press-then-release of key {code} (in order) among {len(key_events)} key events"
        pos = down + 1
    names = " ".join(NAMES.get((EV_KEY, c), str(c)) for c in codes)
    return True, f"{names}: pressed and released in order ({len(key_events)} key events, {len(records)} records)"


def pointer(records, want_x, want_y, tol):
    x = y = None
    pressed_at = None
    released = False
    for r in records:
        typ, code, value = r[2], r[3], r[4]
        if typ == EV_ABS and code == ABS_X:
            x = value
        elif typ == EV_ABS and code == ABS_Y:
            y = value
        elif typ == EV_KEY and code == BTN_LEFT:
            if value == 1 and pressed_at is None:
                # The press's own frame may carry the position: look ahead to its SYN_REPORT.
                pressed_at = "pending"
            elif value == 0 and pressed_at is not None:
                released = True
        elif typ == EV_SYN and pressed_at == "pending":
            pressed_at = (x, y)
    if pressed_at is None:
        return False, "no BTN_LEFT press"
    if pressed_at == "pending":
        pressed_at = (x, y)
    if not released:
        return False, f"BTN_LEFT pressed at {pressed_at} but never released"
    px, py = pressed_at
    if px is None or py is None:
        return False, f"BTN_LEFT pressed/released but no ABS_X/ABS_Y before it (got {pressed_at})"
    if abs(px - want_x) > tol or abs(py - want_y) > tol:
        return False, f"BTN_LEFT pressed at ({px},{py}), expected ({want_x},{want_y}) +-{tol}"
    n_abs = sum(1 for r in records if r[2] == EV_ABS)
    return True, (f"BTN_LEFT 1/0 at ABS ({px},{py}), expected ({want_x},{want_y}) +-{tol} "
                  f"({n_abs} ABS events, {len(records)} records)")


def main(argv):
    if len(argv) == 3 and argv[1] == "dump":
        show(read(argv[2]), skip_syn=False)
        return 0
    if len(argv) >= 4 and argv[1] == "keys":
        records = read(argv[2])
        ok, msg = keys(records, [int(c, 0) for c in argv[3:]])
    elif len(argv) in (5, 6) and argv[1] == "pointer":
        records = read(argv[2])
        ok, msg = pointer(records, int(argv[3]), int(argv[4]), int(argv[5]) if len(argv) == 6 else 1)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(msg)
    show(records)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
