#!/usr/bin/env python3
"""Pixel checks of the local prompt's box in QMP screendumps (needs PIL: /usr/bin/python3).

  promptcheck.py box BEFORE.png SHOT.png WxH+X+Y   the box is at that place in SHOT: its corners
                                                  have the border colour, most of it differs from
                                                  BEFORE, and nothing outside it does
  promptcheck.py same BEFORE.png SHOT.png         every pixel of SHOT equals BEFORE
Exit 0 when the check holds, 1 otherwise; one summary line either way.
"""
import re
import sys

BORDER = (0xF2, 0xC2, 0x30)


def load(path):
    from PIL import Image

    return Image.open(path).convert("RGB")


def changed(before, shot):
    """A mask of the pixels that differ (255) and their bounding box."""
    from PIL import ImageChops

    mask = ImageChops.difference(before, shot).convert("L").point(lambda v: 255 if v else 0)
    return mask, mask.getbbox()


def count(mask):
    return mask.histogram()[255]


def box(before_path, shot_path, geometry):
    m = re.fullmatch(r"(\d+)x(\d+)\+(\d+)\+(\d+)", geometry)
    if not m:
        print("bad geometry %r" % geometry)
        return 1
    w, h, x0, y0 = map(int, m.groups())
    before, shot = load(before_path), load(shot_path)
    if before.size != shot.size:
        print("sizes differ: %s and %s" % (before.size, shot.size))
        return 1
    px = shot.load()
    corners = [(x0, y0), (x0 + w - 1, y0), (x0, y0 + h - 1), (x0 + w - 1, y0 + h - 1)]
    bad_corners = [(c, px[c]) for c in corners if px[c] != BORDER]
    mask, bbox = changed(before, shot)
    inside = count(mask.crop((x0, y0, x0 + w, y0 + h)))
    outside = count(mask) - inside
    share = inside / max(w * h, 1)
    ok = not bad_corners and share > 0.5 and outside == 0
    print("box %s: corners %s, %.0f%% of its %d pixels differ from before, %d pixels outside it"
          " differ (all changes within %s)"
          % (geometry, "border colour" if not bad_corners else "wrong: %s" % bad_corners,
             100 * share, w * h, outside, bbox))
    return 0 if ok else 1


def same(before_path, shot_path):
    before, shot = load(before_path), load(shot_path)
    if before.size != shot.size:
        print("sizes differ: %s and %s" % (before.size, shot.size))
        return 1
    mask, bbox = changed(before, shot)
    if bbox:
        print("%d pixels differ, within %s" % (count(mask), bbox))
        return 1
    print("all %dx%d pixels equal" % shot.size)
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "box":
        return box(argv[2], argv[3], argv[4])
    if len(argv) == 4 and argv[1] == "same":
        return same(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
