#!/usr/bin/env bash
# Per-scan cost of the KMS source against fbdev on the QEMU aarch64 board (examples/scanbench):
# kmsdemo owns the display, then `scanbench kms` and `scanbench fbdev:/dev/fb0` run on the guest
# at each size (1024x768: virtio-gpu; 1920x1080: bochs-display, its dumb buffers in VRAM).
# Wall-clock figures under QEMU's TCG: compare the two sources with each other, not with a
# real Cortex-A53. Bounded: every boot is powered off.
#
# Usage: scripts/bench-board-scan.sh [--size WxH]... [--scans N]   (default both sizes, 60 scans)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOARD=$ROOT/board/qemu-aarch64-virt
sizes=() scans=60
while (($#)); do
    case $1 in
    --size) sizes+=("$2"); shift 2 ;;
    --scans) scans=$2; shift 2 ;;
    *) echo "usage: $0 [--size WxH]... [--scans N]" >&2; exit 2 ;;
    esac
done
((${#sizes[@]})) || sizes=(1024x768 1920x1080)

bin=$("$ROOT/scripts/cross-build.sh" --example kmsdemo --example scanbench | tail -n 1)
dir=$(dirname "$bin")
work=$(mktemp -d "${TMPDIR:-/tmp}/thinshadow-scanbench.XXXXXX")
# shellcheck source=SCRIPTDIR/../board/qemu-aarch64-virt/lib.sh
. "$BOARD/lib.sh"
trap 'board_poweroff; rm -rf "$work"' EXIT

mkdir -p "$work/extra/usr/bin"
install -m 755 "$dir/examples/kmsdemo" "$dir/examples/scanbench" "$work/extra/usr/bin/"
"$BOARD/mkinitramfs.sh" -o "$work/initramfs.cpio.gz" --extra "$work/extra" "$bin" >/dev/null

for size in "${sizes[@]}"; do
    # No agent: nothing else reads the screen while the scans are timed.
    board_boot --size "$size" --initrd "$work/initramfs.cpio.gz" --append ts.agent=0 ||
        { echo "scanbench: the board did not come up at $size" >&2; exit 1; }
    board_cmd 'kmsdemo >/tmp/kmsdemo.log 2>&1 & sleep 2; head -n 1 /tmp/kmsdemo.log'
    board_cmd "scanbench kms $scans; scanbench fbdev:/dev/fb0 $scans" | grep -v '^$'
    board_poweroff
done
