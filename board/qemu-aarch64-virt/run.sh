#!/usr/bin/env bash
# Boot the thinshadow QEMU aarch64 board (virt, cortex-a53, 2 CPUs, 512 MiB, TCG).
#
# Usage: board/qemu-aarch64-virt/run.sh [options] [-- extra qemu args]
#   --size WxH        1024x768 (default: virtio-gpu-pci) or 1920x1080 (bochs-display)
#   --display cirrus  1024x768 on cirrus-vga instead: its DRM driver takes RGB565 framebuffers
#                     (virtio-gpu and bochs take only 32-bit ones); no cursor plane
#   --port N          host port forwarded to the guest's 3389 (default: a free one, picked now)
#   --initrd FILE     default: out/initramfs.cpio.gz (mkinitramfs.sh)
#   --kernel FILE     default: the vmlinuz fetch.sh cached
#   --append TEXT     extra kernel command line (e.g. ts.agent=0)
#   --workdir DIR     where qmp.sock, serial.sock, serial.log, port go (default: a new temp dir)
#   --serial MODE     stdio (default: the console on this terminal, Ctrl-A x quits QEMU) or
#                     unix (a socket DIR/serial.sock, everything logged to DIR/serial.log)
#   --timeout SECS    QEMU is always run under timeout (default 14400, BOARD_TIMEOUT)
# A virtio keyboard (the thin client's own keyboard: QMP send-key types on it). QMP: DIR/qmp.sock. Networking: user mode, restrict=on (the guest reaches nothing outside), only
# tcp 127.0.0.1:PORT -> guest 10.0.2.15:3389; no PXE option ROM (romfile=: no ipxe-qemu needed).
# Serial output has CRLF line ends.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "board: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

size=1024x768
cirrus=0
port=
initrd=$HERE/out/initramfs.cpio.gz
kernel=
append=
workdir=
serial=stdio
tmo=${BOARD_TIMEOUT:-14400}
extra=()
while (($#)); do
    case $1 in
    --size) size=$2; shift 2 ;;
    --display) [[ $2 == cirrus ]] || die "--display takes cirrus"; cirrus=1; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --initrd) initrd=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --serial) serial=$2; shift 2 ;;
    --timeout) tmo=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) usage ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 not found (apt-get install qemu-system-arm)"
if [[ -z $kernel ]]; then
    [[ -f $HERE/cache/current.env ]] || die "no kernel cached: run $HERE/fetch.sh"
    # shellcheck source=/dev/null
    kernel=$(. "$HERE/cache/current.env" && echo "$VMLINUZ")
fi
[[ -f $kernel ]] || die "kernel $kernel missing (run fetch.sh)"
[[ -f $initrd ]] || die "initramfs $initrd missing (run mkinitramfs.sh BINARY)"

case $size in
1024x768) display=(-device "virtio-gpu-pci,xres=1024,yres=768") ;;
1920x1080) display=(-device "bochs-display,romfile=,xres=1920,yres=1080") ;;
*) die "--size must be 1024x768 or 1920x1080" ;;
esac
if ((cirrus)); then
    [[ $size == 1024x768 ]] || die "--display cirrus is 1024x768 only"
    display=(-device "cirrus-vga,romfile=")
fi

if [[ -z $workdir ]]; then
    workdir=$(mktemp -d "${TMPDIR:-/tmp}/thinshadow-board.XXXXXX")
fi
mkdir -p "$workdir"
[[ -n $port ]] || port=$(python3 "$HERE/boardctl.py" freeport)
echo "$port" >"$workdir/port"
rm -f "$workdir/qmp.sock" "$workdir/serial.sock"

case $serial in
stdio) serial_args=() ;;
unix)
    : >"$workdir/serial.log"
    serial_args=(-chardev "socket,id=ser0,path=$workdir/serial.sock,server=on,wait=off,logfile=$workdir/serial.log"
        -serial chardev:ser0)
    ;;
*) die "--serial must be stdio or unix" ;;
esac

cmd=(qemu-system-aarch64 -M virt -cpu "cortex-a53" -smp 2 -m 512 -nographic -no-reboot
    -kernel "$kernel" -initrd "$initrd"
    -append "console=ttyAMA0 panic=-1 quiet vt.global_cursor_default=0 consoleblank=0 $append"
    "${display[@]}" -device virtio-keyboard-pci
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:3389" -device "virtio-net-pci,netdev=n0,romfile="
    -qmp "unix:$workdir/qmp.sock,server=on,wait=off"
    "${serial_args[@]}" "${extra[@]}")
echo "${cmd[*]}" >"$workdir/cmdline"
log "$size, RDP forwarded at 127.0.0.1:$port, workdir $workdir, timeout ${tmo}s"
if [[ $serial == stdio ]]; then
    # --foreground: QEMU keeps the terminal (it reads the console from it).
    exec timeout --foreground -k 10 "$tmo" "${cmd[@]}"
fi
exec timeout -k 10 "$tmo" "${cmd[@]}" </dev/null
