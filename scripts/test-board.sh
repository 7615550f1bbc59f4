#!/usr/bin/env bash
# Board test (skeleton): boot the QEMU aarch64 board, check /dev/fb0 and /dev/uinput, draw a known
# picture on fb0, read it back with a QMP screendump and compare every pixel, power off.
#
# Usage: scripts/test-board.sh [--size 1024x768|1920x1080]   (default: both sizes, one boot each)
# Env: THINSHADOW_BIN=path (skip the cross-build), TEST_BOARD_TIMEOUT (whole run, default 300 s),
#      TEST_BOARD_KEEP=1 (keep the work dir with screendumps and serial logs).
# The xfreerdp login, screen comparison through RDP and uinput read-back come once the agent serves.
# Needs: what scripts/run-board.sh installs, plus python3-pil (/usr/bin/python3) for the comparison.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOARD=$ROOT/board/qemu-aarch64-virt

if [[ -z ${_TEST_BOARD_UNDER_TIMEOUT:-} ]]; then
    export _TEST_BOARD_UNDER_TIMEOUT=1
    exec timeout -k 30 "${TEST_BOARD_TIMEOUT:-300}" "$0" "$@"
fi

sizes=(1024x768 1920x1080)
if [[ ${1:-} == --size ]]; then
    sizes=("$2")
fi

t0=$SECONDS
log() { echo "test-board: $*" >&2; }
fail() {
    log "FAIL: $*"
    exit 1
}

/usr/bin/python3 -c 'import PIL' 2>/dev/null || fail "python3-pil missing (apt-get install python3-pil)"

work=$(mktemp -d "${TMPDIR:-/tmp}/thinshadow-test-board.XXXXXX")
# shellcheck source=SCRIPTDIR/../board/qemu-aarch64-virt/lib.sh
. "$BOARD/lib.sh"
cleanup() {
    local rc=$?
    board_poweroff
    if ((rc != 0)) || [[ ${TEST_BOARD_KEEP:-0} == 1 ]]; then
        log "work dir kept: $work"
    else
        rm -rf "$work"
    fi
    log "wall time $((SECONDS - t0)) s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bin=${THINSHADOW_BIN:-}
if [[ -z $bin ]]; then
    bin=$("$ROOT/scripts/cross-build.sh" | tail -n 1)
fi

mkdir -p "$work/extra/usr/share/thinshadow-test"
for s in "${sizes[@]}"; do
    /usr/bin/python3 "$BOARD/pattern.py" make "${s%x*}" "${s#*x}" \
        "$work/extra/usr/share/thinshadow-test/pattern-$s.xrgb"
done
"$BOARD/mkinitramfs.sh" -o "$work/initramfs.cpio.gz" --extra "$work/extra" "$bin" >/dev/null

export BOARD_KEEP=1
passed=0
for s in "${sizes[@]}"; do
    w=${s%x*}
    h=${s#*x}
    log "--- $s ---"
    # ts.tty1=0: no shell on the framebuffer console, so nothing redraws over the picture.
    board_boot --size "$s" --initrd "$work/initramfs.cpio.gz" --append ts.tty1=0 || fail "$s: boot"
    boot_log=$BOARD_DIR/serial.log

    board_cmd 'test -c /dev/fb0' || fail "$s: /dev/fb0 missing"
    board_cmd 'test -c /dev/uinput' || fail "$s: /dev/uinput missing"
    # shellcheck disable=SC2016 # expanded in the guest
    geo=$(board_cmd 'cd /sys/class/graphics/fb0 && echo $(cat name virtual_size bits_per_pixel stride)') ||
        fail "$s: fb0 sysfs"
    log "fb0: $geo"
    read -r _name vsize bpp stride <<<"$geo"
    [[ $vsize == "$w,$h" && $bpp == 32 && $stride == $((4 * w)) ]] ||
        fail "$s: fb0 is $vsize ${bpp}bpp stride $stride, expected $w,$h 32bpp stride $((4 * w))"

    # Take fbcon off the framebuffer, then draw.
    # shellcheck disable=SC2016 # expanded in the guest
    board_cmd 'for v in /sys/class/vtconsole/vtcon*; do grep -q "frame buffer" $v/name && echo 0 >$v/bind; done; true' >/dev/null
    board_cmd -t 60 "dd if=/usr/share/thinshadow-test/pattern-$s.xrgb of=/dev/fb0 bs=65536" >/dev/null ||
        fail "$s: dd onto /dev/fb0"

    ok=0
    for try in 1 2 3 4 5 6 7 8 9 10; do
        shot=$work/screendump-$s-$try.png
        board_screendump "$shot" || fail "$s: QMP screendump"
        if result=$(/usr/bin/python3 "$BOARD/pattern.py" check "$w" "$h" "$shot"); then
            ok=1
            break
        fi
        sleep 0.5
    done
    log "screendump: $result (try $try)"
    ((ok)) || fail "$s: the screendump does not show the picture ($shot)"

    board_poweroff
    cp "$boot_log" "$work/serial-$s.log" 2>/dev/null || true
    grep -q 'reboot: Power down' "$work/serial-$s.log" || fail "$s: guest did not power off cleanly"
    rm -rf "$BOARD_DIR"
    passed=$((passed + 1))
done

echo "board: ${passed} passed, 0 failed"
