"""Log in with aardwolf (a Python RDP client with its own stack) and compare what it drew.

Run with the venv's python that has aardwolf (scripts/e2e-clients.sh makes it):

  aardwolf_client.py --port P --user U --password PW --sec tls|nla [--bpp 32|16]
                     [--ref PIC] [--timeout S] [--save OUT.png]

Exit 0 when the login worked and (with --ref) its desktop buffer equals the picture, 1 when
it did not (one line says why), 3 when the login was refused.
"""
import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aardwolf.commons.factory import RDPConnectionFactory  # noqa: E402
from aardwolf.commons.iosettings import RDPIOSettings  # noqa: E402
from aardwolf.commons.queuedata.constants import VIDEO_FORMAT  # noqa: E402
from aardwolf.protocol.x224.constants import SUPP_PROTOCOLS  # noqa: E402

import pixels  # noqa: E402


def difference(shot, ref):
    """(differing pixels, max channel difference) of two RGB images of one size."""
    from PIL import ImageChops
    diff = ImageChops.difference(shot, ref)
    mask = diff.convert("L").point(lambda v: 255 if v else 0)
    count = sum(1 for v in mask.get_flattened_data() if v) if hasattr(mask, "get_flattened_data") else sum(1 for v in mask.getdata() if v)
    top = max(hi for _, hi in diff.getextrema())
    return count, top


def blue_red(image):
    """aardwolf's 32-bpp bitmap decoder (its Rust `_rle`) writes B, G, R, A, which it hands
    to PIL as RGBA: red and blue come out swapped (xfreerdp, rdesktop and IronRDP draw the
    same stream in the picture's colours). This puts them back."""
    from PIL import Image
    r, g, b = image.split()
    return Image.merge("RGB", (b, g, r))


async def session(args):
    settings = RDPIOSettings()
    settings.channels = []
    settings.vchannels = {}
    settings.video_width, settings.video_height = args.width, args.height
    # aardwolf asks for highColorDepth 16 unless its max is 24 (it has no 32 there), and
    # lists 32 bpp as supported: the server picks.
    settings.video_bpp_min = 16
    settings.video_bpp_max = args.bpp
    settings.video_out_format = VIDEO_FORMAT.PIL
    settings.clipboard_use_pyperclip = False
    settings.supported_protocols = (
        SUPP_PROTOCOLS.SSL if args.sec == "tls" else SUPP_PROTOCOLS.HYBRID | SUPP_PROTOCOLS.HYBRID_EX
    )
    url = f"rdp+ntlm-password://{args.user}:{args.password}@127.0.0.1:{args.port}"
    conn = RDPConnectionFactory.from_url(url, settings).get_connection(settings)
    try:
        _, err = await asyncio.wait_for(conn.connect(), args.timeout)
        if err is not None:
            print(f"login failed: {err!r}")
            return 3
        ref = pixels.load(args.ref) if args.ref else None
        deadline = asyncio.get_running_loop().time() + args.timeout
        last = "nothing drawn"
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            if conn.disconnected_evt.is_set():
                print(f"disconnected by the server; {last}")
                return 1
            if not conn.desktop_buffer_has_data:
                continue
            shot = blue_red(conn.get_desktop_buffer(VIDEO_FORMAT.PIL).convert("RGB"))
            if ref is None:
                print(f"logged in; desktop {shot.size[0]}x{shot.size[1]} drawn")
                return 0
            if shot.size != ref.size:
                shot = shot.crop((0, 0) + ref.size)
            count, top = difference(shot, ref)
            last = f"{count} differing pixels of {ref.size[0] * ref.size[1]}, max channel diff {top}"
            if args.save:
                shot.save(args.save)
            if count == 0:
                print(f"match: {last}")
                return 0
        print(f"mismatch: {last}")
        return 1
    except asyncio.TimeoutError:
        print("timed out logging in")
        return 1
    finally:
        await conn.terminate()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--sec", choices=["tls", "nla"], required=True)
    p.add_argument("--bpp", type=int, default=32)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=768)
    p.add_argument("--ref")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--save")
    args = p.parse_args()
    sys.exit(asyncio.run(session(args)))


if __name__ == "__main__":
    main()
