#!/usr/bin/python3
"""Helpers for scripts/bench-vs-freerdp.sh (run with /usr/bin/python3, Debian's python3-pil).

Subcommands (every loop is bounded by --seconds or a fixed count; sockets are loopback only):

  workload DISPLAY --size WxH --seconds S --log CODES.tsv [--init]
      Paints the workload into X display DISPLAY with raw X11 PutImage requests over the display's
      unix socket (no Xlib, no process per frame): a frame-code strip with a clock, a 25 fps
      animation, scrolling text, a moving window and a background flip every 5 s. Only the damaged
      rectangles are sent, from precomputed pixels. After each frame a GetInputFocus round trip
      makes sure the X server has written the pixels into its -fbdir framebuffer; that moment is
      logged as "code<TAB>t_drawn" (CLOCK_MONOTONIC seconds). --init paints frame 0 and exits.
  frames --size WxH --count N --out FILE
      The workload's first N frames painted into memory (no X) and written as raw BGRX frames,
      one after another, for offline replays (benches/replay.rs).
  readback XWD --origin X,Y --seconds S --out SEEN.tsv [--interval 0.002]
      Polls the client's -fbdir XWD file, decodes the frame-code strip at the window origin and logs
      the first time each code is seen ("code<TAB>t_seen").
  relay --listen-port P --target-port Q --seconds S --out COUNTS.txt
      Loopback TCP relay 127.0.0.1:P -> 127.0.0.1:Q counting bytes each way. SIGUSR1 appends a
      "mark c2s s2c" line, the end (SIGTERM or --seconds) appends "final c2s s2c".
  cpu PID                 utime+stime in seconds of PID and all its descendants (tree)
  watch PID --seconds S --out MEM.json [--interval 0.1]
      Samples the tree's /proc/*/status every interval: peak of summed VmRSS and RssAnon, and the
      last VmHWM sum. Written at the end (SIGTERM or --seconds).
  ctxsw PID               voluntary and nonvoluntary context switches over all threads of the tree
  report RESULTS.json...  the side-by-side table
"""
import argparse
import json
import mmap
import os
import selectors
import signal
import socket
import statistics
import struct
import sys
import time

FPS = 25
STRIP_BITS = 16            # code bits; the strip holds the code and its complement
BLOCK_W, BLOCK_H = 16, 24  # one bit per block, pure black or white (survives lossy codecs)
STRIP_X, STRIP_Y = 16, 8


def now():
    return time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process here


def own_cpu():
    r = os.times()
    return r.user + r.system


# --------------------------------------------------------------------------- /proc

CLK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15
    return int(rest[1]), int(rest[11]), int(rest[12])


def tree(pid):
    """pid and its descendants (one scan of /proc)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = _stat(int(d))[0]
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu(pid):
    total = 0
    for p in tree(pid):
        try:
            _, ut, st = _stat(p)
            total += ut + st
        except (OSError, ValueError, IndexError):
            pass
    return total / CLK


def status_kb(pid, keys):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def cmd_cpu(a):
    print(f"{tree_cpu(a.pid):.3f}")


def cmd_ctxsw(a):
    vol = nonvol = 0
    for p in tree(a.pid):
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            s = status_kb(f"{p}/task/{t}", ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
            vol += s.get("voluntary_ctxt_switches", 0)
            nonvol += s.get("nonvoluntary_ctxt_switches", 0)
    print(vol, nonvol)


stop = False


def _on_term(*_):
    global stop
    stop = True


def cmd_watch(a):
    signal.signal(signal.SIGTERM, _on_term)
    keys = ("VmRSS", "RssAnon", "VmHWM")
    peak_rss = peak_anon = hwm = 0
    samples = 0
    pids = tree(a.pid)
    last_scan = now()
    end = now() + a.seconds
    while not stop and now() < end:
        if now() - last_scan > 1.0:
            pids = tree(a.pid)
            last_scan = now()
        rss = anon = h = 0
        alive = False
        for p in pids:
            s = status_kb(p, keys)
            if s:
                alive = True
            rss += s.get("VmRSS", 0)
            anon += s.get("RssAnon", 0)
            h += s.get("VmHWM", 0)
        if not alive:
            break
        peak_rss, peak_anon, hwm = max(peak_rss, rss), max(peak_anon, anon), max(hwm, h)
        samples += 1
        time.sleep(a.interval)
    with open(a.out, "w") as f:
        json.dump({"peak_rss_kb": peak_rss, "peak_rss_anon_kb": peak_anon, "vm_hwm_kb": hwm,
                   "samples": samples, "harness_cpu_s": own_cpu()}, f)


# --------------------------------------------------------------------------- relay

def cmd_relay(a):
    signal.signal(signal.SIGTERM, _on_term)
    marks = []
    signal.signal(signal.SIGUSR1, lambda *_: marks.append(1))
    counts = [0, 0]  # client->server, server->client
    out = open(a.out, "a")

    def write(tag):
        out.write(f"{tag} {counts[0]} {counts[1]} {now():.6f}\n")
        out.flush()

    sel = selectors.DefaultSelector()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.listen_port))
    ls.listen(4)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
    peers = {}  # sock -> (other, direction index)
    end = now() + a.seconds
    while not stop and now() < end:
        while marks:
            marks.pop()
            write("mark")
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            if s is ls:
                try:
                    c, _addr = ls.accept()
                except BlockingIOError:
                    continue
                if len(peers) >= 16:
                    c.close()
                    continue
                srv = socket.create_connection(("127.0.0.1", a.target_port), timeout=5)
                for x in (c, srv):
                    x.setblocking(True)
                    x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peers[c] = (srv, 0)
                peers[srv] = (c, 1)
                sel.register(c, selectors.EVENT_READ, None)
                sel.register(srv, selectors.EVENT_READ, None)
                continue
            other, d = peers.get(s, (None, 0))
            if other is None:
                continue
            try:
                data = s.recv(262144)
            except OSError:
                data = b""
            if data:
                counts[d] += len(data)
                try:
                    other.sendall(data)  # blocking: the relay passes backpressure on
                    continue
                except OSError:
                    pass
            for x in (s, other):
                if x in peers:
                    sel.unregister(x)
                    del peers[x]
                    x.close()
    write("final")
    out.write(f"harness_cpu {own_cpu():.3f}\n")
    out.close()


# --------------------------------------------------------------------------- XWD readback

XWD_FIELDS = 25


def xwd_geometry(m):
    h = struct.unpack(">25I", m[:100])
    header_size, version, bpp, stride, ncolors = h[0], h[1], h[11], h[12], h[19]
    if version != 7 or bpp != 32:
        raise ValueError("need an XWD v7 32 bpp file (Xvfb -fbdir)")
    return header_size + ncolors * 12, stride, h[4], h[5]


def strip_offsets(off, stride, ox, oy):
    y = oy + STRIP_Y + BLOCK_H // 2
    return [off + y * stride + (ox + STRIP_X + i * BLOCK_W + BLOCK_W // 2) * 4 + 1
            for i in range(2 * STRIP_BITS)]  # +1: the green byte of BGRX


def decode(m, offs):
    v = 0
    for o in offs:
        v = (v << 1) | (m[o] > 128)
    code, comp = v >> STRIP_BITS, v & ((1 << STRIP_BITS) - 1)
    return code if code ^ comp == (1 << STRIP_BITS) - 1 else None


def cmd_readback(a):
    signal.signal(signal.SIGTERM, _on_term)
    ox, oy = (int(v) for v in a.origin.split(","))
    seen = {}
    with open(a.xwd, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        off, stride, _w, _h = xwd_geometry(m)
        offs = strip_offsets(off, stride, ox, oy)
        end = now() + a.seconds
        polls = 0
        while not stop and now() < end:
            c = decode(m, offs)
            if c is not None and c not in seen:
                seen[c] = now()
            polls += 1
            time.sleep(a.interval)
    with open(a.out, "w") as f:
        for c, t in sorted(seen.items(), key=lambda kv: kv[1]):
            f.write(f"{c}\t{t:.6f}\n")
        f.write(f"#polls\t{polls}\n#harness_cpu\t{own_cpu():.3f}\n")


# --------------------------------------------------------------------------- workload

class X11:
    """Just enough of the X11 protocol: connect (no auth), CreateGC, PutImage, a sync."""

    def __init__(self, display):
        num = display.lstrip(":").split(".")[0]
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(f"/tmp/.X11-unix/X{num}")
        self.s.sendall(struct.pack("<BxHHHHxx", 0x6C, 11, 0, 0, 0))
        head = self._read(8)
        extra = self._read(struct.unpack("<H", head[6:8])[0] * 4)
        if head[0] != 1:
            raise RuntimeError(f"X connection refused: {extra[:head[1]]!r}")
        rid_base, = struct.unpack("<I", extra[4:8])
        vlen, self.maxreq = struct.unpack("<HH", extra[16:20])
        nformats = extra[21]
        if extra[22] != 0:
            raise RuntimeError("X server image byte order is not LSBFirst")
        scr = 32 + ((vlen + 3) & ~3) + 8 * nformats
        self.root, = struct.unpack("<I", extra[scr:scr + 4])
        self.width, self.height = struct.unpack("<HH", extra[scr + 20:scr + 24])
        self.depth = extra[scr + 38]
        self.gc = rid_base + 1
        self.s.sendall(struct.pack("<BxHIII", 55, 4, self.gc, self.root, 0))
        self.sync()

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            d = self.s.recv(n - len(buf))
            if not d:
                raise RuntimeError("X server closed the connection")
            buf += d
        return buf

    def put(self, x, y, w, h, bgrx):
        """bgrx: h rows of w*4 bytes."""
        row = w * 4
        per = max(1, (self.maxreq * 4 - 24) // row)
        for r0 in range(0, h, per):
            n = min(per, h - r0)
            data = bgrx[r0 * row:(r0 + n) * row]
            self.s.sendall(struct.pack("<BBHIIHHhhBBxx", 72, 2, 6 + n * w, self.root, self.gc,
                                       w, n, x, y + r0, 0, self.depth) + data)

    def sync(self):
        self.s.sendall(struct.pack("<BxH", 43, 1))
        for _ in range(100000):
            ev = self._read(32)
            if ev[0] == 1:
                return
            if ev[0] == 0:
                raise RuntimeError(f"X error code {ev[1]} (major opcode {ev[10]})")
        raise RuntimeError("no reply to GetInputFocus")


def _font(size, mono=False):
    from PIL import ImageFont
    for p in (("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",) if mono else ()) + (
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"):
        if os.path.exists(p):
            return ImageFont.truetype(p, size)
    return ImageFont.load_default()


def bgrx(img):
    return img.convert("RGB").tobytes("raw", "BGRX")


class Workload:
    def __init__(self, w, h, seconds):
        from PIL import Image, ImageDraw
        self.Image, self.ImageDraw = Image, ImageDraw
        self.w, self.h = w, h
        self.frames = int(seconds * FPS)
        # Layout (no overlaps for sizes from 1024x700 up).
        self.anim_size = min(240, (h - 120) // 3)
        self.anim_xy = (40, 80)
        self.scroll_xy = (self.anim_size + 80, 80)
        self.scroll_wh = (min(560, w - self.anim_size - 120), min(320, h // 2 - 80))
        self.win_wh = (300, 200)
        self.win_y = h - self.win_wh[1] - 20
        self.win_dx = 6
        # Backgrounds A and B: gradients with a grid (flipped every 5 s).
        self.bg = []
        for k in range(2):
            img = Image.new("RGB", (w, h))
            d = ImageDraw.Draw(img)
            for y in range(0, h, 4):
                v = y * 255 // h
                d.rectangle([0, y, w, y + 3], fill=(v // 3, 60 + v // 2, 140 - v // 3) if k == 0
                            else (150 - v // 2, 90, 40 + v // 2))
            for x in range(0, w, 64):
                d.line([(x, 0), (x, h)], fill=(200, 200, 200) if k == 0 else (30, 30, 30))
            self.bg.append(img)
        # Animation: 25 frames (1 s cycle) of a ball over a rotating colour wheel of bars.
        a = self.anim_size
        self.anim = []
        for i in range(FPS):
            img = Image.new("RGB", (a, a), (20, 20, 40))
            d = ImageDraw.Draw(img)
            for b in range(12):
                c = ((b * 21 + i * 10) % 256, (b * 40 + 80) % 256, (255 - b * 20 - i * 10) % 256)
                d.rectangle([0, b * a // 12, a, (b + 1) * a // 12], fill=c)
            import math
            cx = a / 2 + math.cos(2 * math.pi * i / FPS) * a / 3
            cy = a / 2 + math.sin(2 * math.pi * i / FPS) * a / 3
            r = a // 8
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 255, 255), outline=(0, 0, 0))
            self.anim.append(bgrx(img))
        # Scrolling text: a tall text image, 2 rows up per frame.
        sw, sh = self.scroll_wh
        self.scroll_step = 2
        tall = sh + self.frames * self.scroll_step + 16
        img = Image.new("RGB", (sw, tall), (255, 255, 255))
        d = ImageDraw.Draw(img)
        f = _font(13, mono=True)
        words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
        for n, y in enumerate(range(4, tall - 16, 18)):
            line = f"{n:5d}  " + " ".join(words[(n + j) % len(words)] for j in range(9))
            d.text((6, y), line, font=f, fill=(0, 0, 0) if n % 7 else (160, 0, 0))
        self.scroll_bytes = bgrx(img)
        # The moving window: title bar, border, some text.
        ww, wh = self.win_wh
        img = Image.new("RGB", (ww, wh), (236, 236, 236))
        d = ImageDraw.Draw(img)
        d.rectangle([0, 0, ww - 1, 24], fill=(40, 80, 160))
        d.text((8, 4), "Moving window", font=_font(13), fill=(255, 255, 255))
        d.rectangle([0, 0, ww - 1, wh - 1], outline=(20, 20, 20))
        for i in range(8):
            d.text((10, 34 + i * 20), f"Item {i + 1}: a line of text", font=_font(12), fill=(0, 0, 0))
        self.win_img = img
        self.win_bytes = bgrx(img)
        self.clock_font = _font(18, mono=True)

    def win_x(self, i):
        span = self.w - self.win_wh[0]
        p = (i * self.win_dx) % (2 * span)
        return p if p < span else 2 * span - p

    def strip(self, code, t):
        w = STRIP_X + 2 * STRIP_BITS * BLOCK_W + 300
        img = self.Image.new("RGB", (w, BLOCK_H + 16), (0, 0, 0))
        d = self.ImageDraw.Draw(img)
        v = (code << STRIP_BITS) | (code ^ ((1 << STRIP_BITS) - 1))
        for i in range(2 * STRIP_BITS):
            bit = (v >> (2 * STRIP_BITS - 1 - i)) & 1
            x = STRIP_X + i * BLOCK_W
            d.rectangle([x, STRIP_Y, x + BLOCK_W - 1, STRIP_Y + BLOCK_H - 1],
                        fill=(255, 255, 255) if bit else (0, 0, 0))
        d.text((STRIP_X + 2 * STRIP_BITS * BLOCK_W + 12, STRIP_Y),
               time.strftime("%H:%M:%S", time.localtime()) + f".{int(t * 1000) % 1000:03d} #{code}",
               font=self.clock_font, fill=(255, 255, 0))
        return img.size, bgrx(img)

    def paint(self, x11, i, t, full, code=None):
        bgk = (i // (5 * FPS)) % 2
        if full:
            x11.put(0, 0, self.w, self.h, bgrx(self.bg[bgk]))
        (sw_, sh_), sb = self.strip(i + 1 if code is None else code, t)
        x11.put(0, 0, sw_, sh_, sb)
        ax, ay = self.anim_xy
        a = self.anim_size
        x11.put(ax, ay, a, a, self.anim[i % FPS])
        sx, sy = self.scroll_xy
        sw, sh = self.scroll_wh
        off = i * self.scroll_step * sw * 4
        x11.put(sx, sy, sw, sh, self.scroll_bytes[off:off + sh * sw * 4])
        ww, wh = self.win_wh
        nx, px = self.win_x(i), self.win_x(i - 1) if i > 0 else None
        if px is not None and px != nx and not full:
            # Uncover what the window left: the background strip it no longer covers.
            lo, hi = (px, nx) if px < nx else (nx + ww, px + ww)
            lo, hi = max(0, lo), min(self.w, hi)
            if hi > lo:
                x11.put(lo, self.win_y, hi - lo, wh,
                        bgrx(self.bg[bgk].crop((lo, self.win_y, hi, self.win_y + wh))))
        x11.put(nx, self.win_y, ww, wh, self.win_bytes)
        x11.sync()


class Canvas:
    """A stand-in for X11 that paints into a BGRX buffer (the `frames` subcommand)."""

    def __init__(self, w, h):
        self.width, self.height = w, h
        self.fb = bytearray(w * h * 4)

    def put(self, x, y, w, h, bgrx):
        row = w * 4
        for r in range(h):
            o = ((y + r) * self.width + x) * 4
            self.fb[o:o + row] = bgrx[r * row:(r + 1) * row]

    def sync(self):
        pass


def cmd_frames(a):
    """The workload's first --count frames, painted without X, as raw BGRX frames in one file."""
    w, h = (int(v) for v in a.size.split("x"))
    wl = Workload(w, h, a.count / FPS)
    c = Canvas(w, h)
    with open(a.out, "wb") as f:
        for i in range(a.count):
            wl.paint(c, i, i / FPS, i % (5 * FPS) == 0)
            f.write(c.fb)


def cmd_workload(a):
    w, h = (int(v) for v in a.size.split("x"))
    if w < 1024 or h < 700:
        sys.exit("workload needs at least 1024x700")
    x11 = X11(a.display)
    if (x11.width, x11.height) != (w, h):
        sys.exit(f"display is {x11.width}x{x11.height}, expected {w}x{h}")
    wl = Workload(w, h, 0 if a.init else a.seconds)
    if a.init:
        wl.paint(x11, 0, now(), True, code=0)  # code 0 is never drawn by a run
        return
    cpu0 = own_cpu()
    log = open(a.log, "w")
    t0 = now() + 0.05
    late = 0
    for i in range(wl.frames):
        target = t0 + i / FPS
        dt = target - now()
        if dt > 0:
            time.sleep(dt)
        else:
            late += 1
        flip = i % (5 * FPS) == 0
        wl.paint(x11, i, now(), flip)
        log.write(f"{i + 1}\t{now():.6f}\n")
    log.write(f"#frames\t{wl.frames}\n#late\t{late}\n#harness_cpu\t{own_cpu() - cpu0:.3f}\n")
    log.close()


# --------------------------------------------------------------------------- report

def read_tsv(path):
    rows, meta = {}, {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            if k.startswith("#"):
                meta[k[1:]] = float(v)
            elif k:
                rows[int(k)] = float(v)
    return rows, meta


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))]


def cmd_analyze(a):
    """Combine one server's files into a JSON result (printed)."""
    drawn, dmeta = read_tsv(a.codes)
    seen, smeta = read_tsv(a.seen)
    lat = [(seen[c] - t) * 1000 for c, t in drawn.items() if c in seen and c > 0]
    counts = {}
    with open(a.relay) as f:
        for line in f:
            p = line.split()
            if p[0] in ("mark", "final"):
                counts.setdefault(p[0], []).append((int(p[1]), int(p[2])))
            elif p[0] == "harness_cpu":
                counts["harness_cpu"] = float(p[1])
    marks = counts.get("mark", [])
    final = counts.get("final", [(0, 0)])[-1]
    w0, w1 = (marks + [(0, 0), (0, 0)])[:2] if len(marks) >= 2 else ((0, 0), final)
    mem = json.load(open(a.mem))
    res = {
        "server": a.name,
        "cpu_s": a.cpu_end - a.cpu_start,
        "peak_rss_mib": mem["vm_hwm_kb"] / 1024,
        "peak_sampled_rss_mib": mem["peak_rss_kb"] / 1024,
        "peak_rss_anon_mib": mem["peak_rss_anon_kb"] / 1024,
        "bytes_to_client": w1[1] - w0[1],
        "bytes_to_server": w1[0] - w0[0],
        "bytes_to_client_total": final[1],
        "bytes_to_server_total": final[0],
        "frames_drawn": int(dmeta.get("frames", len(drawn))),
        "frames_late": int(dmeta.get("late", 0)),
        "frames_seen": len(lat),
        "lat_median_ms": statistics.median(lat) if lat else float("nan"),
        "lat_p95_ms": pct(lat, 95),
        "client_cpu_s": a.client_cpu,
        "src_xvfb_cpu_s": a.xvfb_cpu,
        "harness_workload_cpu_s": dmeta.get("harness_cpu", 0),
        "harness_readback_cpu_s": smeta.get("harness_cpu", 0),
        "harness_relay_cpu_s": counts.get("harness_cpu", 0),
        "harness_watch_cpu_s": mem.get("harness_cpu_s", 0),
        "readback_polls": int(smeta.get("polls", 0)),
    }
    print(json.dumps(res))


def mean_of_runs(runs):
    """One result from several runs of a server: the mean of each figure, and `spread` (half
    the range, max-min over 2) of each numeric one."""
    out = dict(runs[0])
    out["spread"] = {}
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            xs = [r[k] for r in runs]
            out[k] = statistics.fmean(xs)
            out["spread"][k] = (max(xs) - min(xs)) / 2
    out["runs"] = len(runs)
    return out


def cmd_report(a):
    rs = [json.load(open(p)) for p in a.results]
    grouped = {}
    for r in rs:
        grouped.setdefault(r["server"], []).append(r)
    by = {n: (mean_of_runs(g) if len(g) > 1 else g[0]) for n, g in grouped.items()}
    names = list(grouped)
    if any(len(g) > 1 for g in grouped.values()):
        print(f"mean ± spread (half the range) of {max(len(g) for g in grouped.values())} runs")
    rows = [
        ("server CPU s (tree, during workload)", "cpu_s", "{:.2f}"),
        ("peak RSS MiB (VmHWM)", "peak_rss_mib", "{:.1f}"),
        ("peak RssAnon MiB (sampled 100 ms)", "peak_rss_anon_mib", "{:.2f}"),
        ("bytes to client (workload)", "bytes_to_client", "{:,.0f}"),
        ("bytes to server (workload)", "bytes_to_server", "{:,.0f}"),
        ("bytes to client (whole session)", "bytes_to_client_total", "{:,.0f}"),
        ("frames shown / drawn", None, None),
        ("latency median ms", "lat_median_ms", "{:.1f}"),
        ("latency p95 ms", "lat_p95_ms", "{:.1f}"),
        ("client (xfreerdp) CPU s", "client_cpu_s", "{:.2f}"),
        ("source Xvfb CPU s", "src_xvfb_cpu_s", "{:.2f}"),
        ("harness CPU s: workload", "harness_workload_cpu_s", "{:.2f}"),
        ("harness CPU s: readback+relay+watch", None, None),
    ]
    w0 = 38
    cols = names + (["ratio ts/frdp"] if {"thinshadow", "freerdp-shadow"} <= set(names) else [])
    cw = 26 if any("spread" in r for r in by.values()) else 16
    out = ["| " + "metric".ljust(w0) + " | " + " | ".join(c.rjust(cw) for c in cols) + " |",
           "|" + "-" * (w0 + 2) + "|" + "|".join("-" * (cw + 2) for _ in cols) + "|"]
    for label, key, fmt in rows:
        vals = []
        for n in names:
            r = by[n]
            sp = r.get("spread", {})
            if label.startswith("frames"):
                v = f"{r['frames_seen']:.0f}/{r['frames_drawn']:.0f}"
                vals.append(v + (f" ±{sp['frames_seen']:.0f}" if sp else ""))
            elif label.startswith("harness CPU s: readback"):
                vals.append("{:.2f}".format(r["harness_readback_cpu_s"] + r["harness_relay_cpu_s"]
                                            + r["harness_watch_cpu_s"]))
            else:
                v = fmt.format(r[key])
                if sp and key in sp:
                    v += " ±" + fmt.format(sp[key]).lstrip()
                vals.append(v)
        if len(cols) > len(names):
            t, f = by["thinshadow"], by["freerdp-shadow"]
            if label.startswith("frames"):
                num, den = t["frames_seen"], f["frames_seen"]
            elif key and not label.startswith(("harness", "source", "client")):
                num, den = t[key], f[key]
            else:
                num, den = None, None
            vals.append(f"{num / den:.3f}" if num is not None and den else "")
        out.append("| " + label.ljust(w0) + " | " + " | ".join(v.rjust(cw) for v in vals) + " |")
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("workload")
    s.add_argument("display")
    s.add_argument("--size", default="1280x800")
    s.add_argument("--seconds", type=float, default=20)
    s.add_argument("--log", default="/dev/null")
    s.add_argument("--init", action="store_true")
    s = sub.add_parser("frames")
    s.add_argument("--size", default="1280x800")
    s.add_argument("--count", type=int, default=150)
    s.add_argument("--out", required=True)
    s = sub.add_parser("readback")
    s.add_argument("xwd")
    s.add_argument("--origin", required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--interval", type=float, default=0.002)
    s = sub.add_parser("relay")
    s.add_argument("--listen-port", type=int, required=True)
    s.add_argument("--target-port", type=int, required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--out", required=True)
    for name in ("cpu", "ctxsw"):
        s = sub.add_parser(name)
        s.add_argument("pid", type=int)
    s = sub.add_parser("watch")
    s.add_argument("pid", type=int)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--interval", type=float, default=0.1)
    s = sub.add_parser("analyze")
    for k in ("name", "codes", "seen", "relay", "mem"):
        s.add_argument("--" + k, required=True)
    for k in ("cpu-start", "cpu-end", "client-cpu", "xvfb-cpu"):
        s.add_argument("--" + k, type=float, required=True)
    s = sub.add_parser("report")
    s.add_argument("results", nargs="+")
    a = p.parse_args()
    {"workload": cmd_workload, "frames": cmd_frames, "readback": cmd_readback, "relay": cmd_relay, "cpu": cmd_cpu,
     "ctxsw": cmd_ctxsw, "watch": cmd_watch, "analyze": cmd_analyze, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
