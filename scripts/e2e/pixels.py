#!/usr/bin/python3
"""Picture generation and pixel comparison helpers for scripts/e2e-freerdp.sh.

Run with /usr/bin/python3 (Debian's python3-pil). Subcommands:

  gen OUT.png --variant 1|2 [--size WxH]   deterministic test picture
  solid OUT.png --size WxH --rgb R,G,B     one-colour picture (to blank the client screen)
  xwd2png XWD OUT.png [--crop X,Y,W,H]      dump an XWD file (e.g. Xvfb -fbdir) as PNG
  compare REF SHOT [--crop X,Y,W,H]         one comparison; REF/SHOT are .png or XWD files
  wait-match REF SHOT --crop X,Y,W,H --timeout S [--diff OUT.png]
                                            re-read SHOT until its crop equals REF or time runs out
  scroll IN OUT --fill P --region X,Y,W,H [--dy N] [--dx M]
                                            IN with the region scrolled by N rows (up when
                                            positive) and M columns (left when positive);
                                            what that uncovers comes from P
  freeport                                  print a free TCP port on 127.0.0.1
  sam-line USER PASS [DOMAIN]               print a WinPR SAM file line (NT hash of PASS)

compare / wait-match print one line
  "match: 0 differing pixels of N, max channel diff 0"  (exit 0)  or
  "mismatch: D differing pixels of N, max channel diff M, bbox (x0,y0)-(x1,y1)"  (exit 1).
"""
import argparse
import mmap
import os
import socket
import struct
import sys
import time

from PIL import Image, ImageChops, ImageDraw, ImageFont

# --------------------------------------------------------------------------- XWD

XWD_FIELDS = (
    "header_size file_version pixmap_format pixmap_depth pixmap_width pixmap_height xoffset "
    "byte_order bitmap_unit bitmap_bit_order bitmap_pad bits_per_pixel bytes_per_line visual_class "
    "red_mask green_mask blue_mask bits_per_rgb colormap_entries ncolors window_width "
    "window_height window_x window_y window_bdrwidth"
).split()


def read_xwd(path):
    """Return an RGB PIL image of an XWD file (32 bpp TrueColor, as Xvfb -fbdir writes)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as m:
            h = dict(zip(XWD_FIELDS, struct.unpack(">25I", m[:100])))
            if h["file_version"] != 7:
                raise ValueError(f"{path}: not an XWD v7 file")
            if h["bits_per_pixel"] != 32:
                raise ValueError(f"{path}: {h['bits_per_pixel']} bpp unsupported")
            w, hgt, stride = h["pixmap_width"], h["pixmap_height"], h["bytes_per_line"]
            off = h["header_size"] + h["ncolors"] * 12
            data = bytes(m[off:off + stride * hgt])
    masks = (h["red_mask"], h["green_mask"], h["blue_mask"])
    # Map the channel masks to byte positions inside a 32-bit pixel.
    little = h["byte_order"] == 0  # LSBFirst
    order = ""
    shifts = {m.bit_length() - 8: c for m, c in zip(masks, "RGB")}
    for byte in range(4):
        shift = byte * 8 if little else (3 - byte) * 8
        order += shifts.get(shift, "X")
    if sorted(order.replace("X", "")) != ["B", "G", "R"]:
        raise ValueError(f"{path}: unsupported masks {masks}")
    raw_mode = order  # e.g. "BGRX"
    return Image.frombuffer("RGB", (w, hgt), data, "raw", raw_mode, stride, 1).copy()


def load(path):
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"\x89PNG") or magic.startswith(b"P6"):
        return Image.open(path).convert("RGB")
    return read_xwd(path)


# --------------------------------------------------------------------------- pictures

def _font(size):
    for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
              "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"):
        if os.path.exists(p):
            return ImageFont.truetype(p, size)
    return ImageFont.load_default()


class Rng:
    """Tiny deterministic xorshift so pictures do not depend on Python's random module."""

    def __init__(self, seed):
        self.s = seed or 1

    def next(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x


def gen(width, height, variant):
    img = Image.new("RGB", (width, height), (24, 24, 32))
    px = img.load()
    d = ImageDraw.Draw(img)
    # 1. Horizontal RGB gradient band at the top, vertical gradient on the left.
    for x in range(width):
        for y in range(0, 96):
            px[x, y] = (x * 255 // (width - 1), y * 255 // 95, 255 - x * 255 // (width - 1))
    for y in range(96, height):
        for x in range(0, 64):
            v = (y - 96) * 255 // (height - 97)
            px[x, y] = (v, 255 - v, (x * 4) & 255)
    # 2. Flat colour areas (tile-aligned and not).
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
               (255, 255, 255), (0, 0, 0), (128, 128, 128), (1, 2, 3)]
    for i, c in enumerate(colours):
        x0 = 80 + i * 61
        d.rectangle([x0, 104, x0 + 56, 180], fill=c)
    # 3. Fine detail: 1-px checkerboard, single-pixel lines, per-pixel noise.
    for y in range(200, 296):
        for x in range(80, 272):
            px[x, y] = (255, 255, 255) if (x + y) & 1 else (0, 0, 0)
    for i in range(0, 96, 3):
        d.line([(288, 200 + i), (480, 200 + i)], fill=(255 - i * 2, i * 2, 128))
    for i in range(0, 192, 4):
        d.line([(496 + i, 200), (496 + i, 295)], fill=(i, 255 - i, 60))
    r = Rng(12345)
    for y in range(200, 328):
        for x in range(704, width - 16):
            v = r.next()
            px[x, y] = (v & 255, (v >> 8) & 255, (v >> 16) & 255)
    # 4. Diagonals and circles (anti-alias free but not axis aligned).
    for k in range(0, 200, 7):
        d.line([(80, 320 + k), (80 + k, 520)], fill=(255, 128, k))
    d.ellipse([300, 330, 480, 510], outline=(255, 255, 255), width=3)
    d.ellipse([340, 370, 440, 470], fill=(200, 40, 90))
    # 5. Text-like strokes: anti-aliased text in several sizes and colours.
    f_big, f_small = _font(28), _font(11)
    d.text((500, 340), "thinshadow e2e", font=f_big, fill=(255, 255, 255))
    d.text((500, 380), "0O1lI| ~ The quick brown fox", font=f_small, fill=(255, 220, 0))
    for row in range(12):
        d.text((80, 540 + row * 16),
               f"{row:02d} ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 !@#$%^&*()",
               font=f_small, fill=(180 + row * 6, 200, 255 - row * 10))
    # 6. The right and bottom edges (odd widths catch off-by-one clipping).
    d.rectangle([width - 3, 0, width - 1, height - 1], fill=(250, 10, 10))
    d.rectangle([0, height - 3, width - 1, height - 1], fill=(10, 250, 10))
    px[width - 1, height - 1] = (255, 255, 255)
    px[0, height - 1] = (0, 0, 255)
    if variant == 2:
        # Partial changes: some large, some tiny, so damage tracking is exercised.
        d.rectangle([80, 104, 700, 180], fill=(30, 60, 90))           # colour row replaced
        d.text((90, 120), "SECOND PICTURE", font=f_big, fill=(255, 255, 0))
        d.rectangle([300, 330, 480, 510], fill=(0, 0, 0))             # circle gone
        d.text((500, 420), "changed text line", font=f_big, fill=(0, 255, 128))
        px[900, 700] = (255, 0, 255)                                  # single pixels
        px[5, 5] = (0, 0, 0)
        px[width - 5, 100] = (0, 255, 0)
        # Invert the noise patch.
        box = (704, 200, width - 16, 328)
        img.paste(ImageChops.invert(img.crop(box)), box[:2])
    elif variant != 1:
        raise ValueError("variant must be 1 or 2")
    return img


# --------------------------------------------------------------------------- comparison

def diff_stats(ref, shot):
    """(differing pixel count, max channel diff, bbox) of two same-size RGB images."""
    diff = ImageChops.difference(ref, shot)
    bbox = diff.getbbox()
    if bbox is None:
        return 0, 0, None, diff
    maxd = max(hi for _, hi in diff.getextrema())
    # Count pixels where any channel differs.
    r, g, b = diff.split()
    anyd = ImageChops.lighter(ImageChops.lighter(r, g), b)
    count = anyd.point(lambda v: 255 if v else 0).histogram()[255]
    return count, maxd, bbox, diff


def crop_of(shot, crop, size):
    if crop:
        x, y, w, h = crop
        if (w, h) != size:
            raise ValueError(f"crop {w}x{h} differs from reference {size[0]}x{size[1]}")
        if x < 0 or y < 0 or x + w > shot.width or y + h > shot.height:
            raise ValueError(f"crop {crop} outside of {shot.width}x{shot.height}")
        return shot.crop((x, y, x + w, y + h))
    if shot.size != size:
        raise ValueError(f"size {shot.width}x{shot.height} differs from reference {size[0]}x{size[1]}")
    return shot


def describe(count, maxd, bbox, total):
    if count == 0:
        return f"match: 0 differing pixels of {total}, max channel diff 0"
    return (f"mismatch: {count} differing pixels of {total}, max channel diff {maxd}, "
            f"bbox ({bbox[0]},{bbox[1]})-({bbox[2] - 1},{bbox[3] - 1})")


def parse_crop(s):
    if not s:
        return None
    v = [int(p) for p in s.split(",")]
    if len(v) != 4:
        raise argparse.ArgumentTypeError("crop is X,Y,W,H")
    return tuple(v)


def cmd_compare(a):
    ref = load(a.ref)
    shot = crop_of(load(a.shot), a.crop, ref.size)
    count, maxd, bbox, diff = diff_stats(ref, shot)
    print(describe(count, maxd, bbox, ref.width * ref.height))
    if count and a.diff:
        shot.save(a.diff + ".shot.png")
        diff.point(lambda v: 255 if v else 0).save(a.diff)
    return 0 if count == 0 else 1


def cmd_wait_match(a):
    ref = load(a.ref)
    deadline = time.monotonic() + a.timeout
    tries = 0
    while True:
        tries += 1
        last_err = None
        try:
            shot = crop_of(load(a.shot), a.crop, ref.size)
            count, maxd, bbox, diff = diff_stats(ref, shot)
        except (OSError, ValueError) as e:  # file not there yet, wrong size while resizing
            last_err, count = str(e), -1
        if count == 0:
            print(describe(0, 0, None, ref.width * ref.height) + f" (after {tries} reads)")
            return 0
        if time.monotonic() >= deadline:
            if last_err:
                print(f"mismatch: {last_err} (after {tries} reads)")
            else:
                print(describe(count, maxd, bbox, ref.width * ref.height) + f" (after {tries} reads)")
                if a.diff:
                    shot.save(a.diff + ".shot.png")
                    diff.point(lambda v: 255 if v else 0).save(a.diff)
            return 1
        time.sleep(a.interval)


def cmd_scroll(a):
    """IN with the region's contents moved up by DY and left by DX (down, right when
    negative); what they uncover comes from FILL at the same place, as when a scrolled view
    reveals new lines."""
    img, new = load(a.inp), load(a.fill)
    x, y, w, h = a.region
    dx, dy = a.dx, a.dy
    region = img.crop((x, y, x + w, y + h))
    out = img.copy()
    out.paste(new.crop((x, y, x + w, y + h)), (x, y))
    # The part of the region that stays inside it after the move.
    sx0, sy0 = max(0, dx), max(0, dy)
    sx1, sy1 = min(w, w + dx), min(h, h + dy)
    out.paste(region.crop((sx0, sy0, sx1, sy1)), (x + sx0 - dx, y + sy0 - dy))
    out.save(a.out)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--variant", type=int, default=1)
    g.add_argument("--size", default="1024x768")
    so = sub.add_parser("solid")
    so.add_argument("out")
    so.add_argument("--size", default="1280x1024")
    so.add_argument("--rgb", default="255,0,128")
    x = sub.add_parser("xwd2png")
    x.add_argument("xwd")
    x.add_argument("out")
    x.add_argument("--crop", type=parse_crop)
    c = sub.add_parser("compare")
    c.add_argument("ref")
    c.add_argument("shot")
    c.add_argument("--crop", type=parse_crop)
    c.add_argument("--diff", help="on mismatch, write a diff mask PNG here (and the crop as .shot.png)")
    w = sub.add_parser("wait-match")
    w.add_argument("ref")
    w.add_argument("shot")
    w.add_argument("--crop", type=parse_crop)
    w.add_argument("--timeout", type=float, default=10.0)
    w.add_argument("--interval", type=float, default=0.2)
    w.add_argument("--diff")
    sc = sub.add_parser("scroll")
    sc.add_argument("inp")
    sc.add_argument("out")
    sc.add_argument("--fill", required=True, help="picture the uncovered rows come from")
    sc.add_argument("--region", type=parse_crop, required=True)
    sc.add_argument("--dy", type=int, default=0)
    sc.add_argument("--dx", type=int, default=0)
    sub.add_parser("freeport")
    s = sub.add_parser("sam-line")
    s.add_argument("user")
    s.add_argument("password")
    s.add_argument("domain", nargs="?", default="")
    a = p.parse_args()

    if a.cmd == "gen":
        wd, ht = (int(v) for v in a.size.split("x"))
        gen(wd, ht, a.variant).save(a.out)
        return 0
    if a.cmd == "solid":
        wd, ht = (int(v) for v in a.size.split("x"))
        Image.new("RGB", (wd, ht), tuple(int(v) for v in a.rgb.split(","))).save(a.out)
        return 0
    if a.cmd == "xwd2png":
        img = load(a.xwd)
        if a.crop:
            x0, y0, w0, h0 = a.crop
            img = img.crop((x0, y0, x0 + w0, y0 + h0))
        img.save(a.out)
        return 0
    if a.cmd == "compare":
        return cmd_compare(a)
    if a.cmd == "wait-match":
        return cmd_wait_match(a)
    if a.cmd == "scroll":
        return cmd_scroll(a)
    if a.cmd == "freeport":
        with socket.socket() as s_:
            s_.bind(("127.0.0.1", 0))
            print(s_.getsockname()[1])
        return 0
    if a.cmd == "sam-line":
        from md4 import md4
        nt = md4(a.password.encode("utf-16-le")).hex()
        # WinPR SAM format: User:Domain:LmHash:NtHash:::
        print(f"{a.user}:{a.domain}::{nt}:::")
        return 0
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
