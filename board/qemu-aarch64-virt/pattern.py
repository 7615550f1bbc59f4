#!/usr/bin/env python3
"""Known test picture for the board's framebuffer.

  pattern.py make W H OUT.raw     raw XRGB8888 (little-endian: B, G, R, 0 per pixel), stride 4*W
  pattern.py check W H SHOT.png   compare a screendump with the picture (needs PIL: /usr/bin/python3);
                                  exit 0 when every pixel matches, 1 otherwise (prints a summary)
  pattern.py png W H OUT.png      the picture as a PNG (a reference for scripts/e2e/pixels.py; PIL)

The picture: eight colour bars on the top half (they catch swapped channels), per-pixel gradients
bottom left (they catch wrong stride or offsets), an 8-pixel checkerboard bottom right.
"""
import sys

BARS = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
        (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]


def pixel(x, y, w, h):
    if y < h // 2:
        return BARS[x * 8 // w]
    if x < w // 2:
        return (x & 255, y & 255, ((x >> 8) * 64 + (y >> 8) * 16) & 255)
    return (255, 255, 255) if ((x >> 3) + (y >> 3)) & 1 else (32, 64, 128)


def make(w, h, out):
    row = bytearray(4 * w)
    with open(out, "wb") as f:
        for y in range(h):
            for x in range(w):
                r, g, b = pixel(x, y, w, h)
                row[4 * x:4 * x + 4] = bytes((b, g, r, 0))
            f.write(row)


def check(w, h, png):
    from PIL import Image

    img = Image.open(png).convert("RGB")
    if img.size != (w, h):
        print("size %dx%d, expected %dx%d" % (img.size + (w, h)))
        return 1
    px = img.load()
    bad = 0
    first = None
    for y in range(h):
        for x in range(w):
            want = pixel(x, y, w, h)
            if px[x, y] != want:
                bad += 1
                if first is None:
                    first = (x, y, px[x, y], want)
    if bad:
        x, y, got, want = first
        print("%d of %d pixels differ; first at (%d,%d): got %s, expected %s" % (bad, w * h, x, y, got, want))
        return 1
    print("all %d pixels match" % (w * h))
    return 0


def png(w, h, out):
    from PIL import Image

    img = Image.new("RGB", (w, h))
    img.putdata([pixel(x, y, w, h) for y in range(h) for x in range(w)])
    img.save(out)


def main(argv):
    if len(argv) == 5 and argv[1] == "make":
        return make(int(argv[2]), int(argv[3]), argv[4])
    if len(argv) == 5 and argv[1] == "png":
        return png(int(argv[2]), int(argv[3]), argv[4])
    if len(argv) == 5 and argv[1] == "check":
        return check(int(argv[2]), int(argv[3]), argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
