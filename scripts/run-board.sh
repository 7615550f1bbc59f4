#!/usr/bin/env bash
# Build thinshadow for aarch64, boot it on the QEMU aarch64 "thin client" board and print how to
# connect with an RDP client. Ctrl+C powers the guest off.
#
# Usage: scripts/run-board.sh [--size 1024x768|1920x1080] [--bin PATH] [--creds-timeout SECS]
#   --bin PATH    use this static aarch64 binary instead of building one
# Env: BOARD_TIMEOUT (QEMU's hard limit, default 28800 s = 8 h), RUN_BOARD_NO_INSTALL=1 (only check).
#
# On a fresh Debian (as root) it installs what is missing: qemu-system-arm,
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, gcc, libc6-dev, kmod, cpio, xz-utils, binutils,
# python3 (apt-get) and the rustup target aarch64-unknown-linux-musl.
# Then: scripts/cross-build.sh, board/qemu-aarch64-virt/fetch.sh (Debian arm64 kernel + busybox,
# cached), mkinitramfs.sh, run.sh in the background; it waits for the guest's THINSHADOW-CREDS line,
# prints the xfreerdp command, and attaches the serial console (a root shell) until Ctrl+C.
# Without a terminal (stdin or stdout not a tty) it follows the console output instead, until SIGINT
# or SIGTERM, e.g. `timeout 600 scripts/run-board.sh </dev/null >board.log`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOARD=$ROOT/board/qemu-aarch64-virt

log() { echo "run-board: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

size=1024x768
bin=
creds_timeout=120
while (($#)); do
    case $1 in
    --size) size=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --creds-timeout) creds_timeout=$2; shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

# --- host prerequisites ---
# A command or a file (what Debian only recommends is named too: see scripts/setup.sh).
declare -A pkg_of=(
    [qemu-system-aarch64]=qemu-system-arm [aarch64-linux-gnu-gcc]=gcc-aarch64-linux-gnu
    [depmod]=kmod [cpio]=cpio [xz]=xz-utils [readelf]=binutils [python3]=python3 [gzip]=gzip
    [apt-get]=apt [dpkg-deb]=dpkg [timeout]=coreutils [cc]=gcc [/usr/include/stdio.h]=libc6-dev
    [/usr/aarch64-linux-gnu/include/stdio.h]=libc6-dev-arm64-cross
)
missing=()
for cmd in "${!pkg_of[@]}"; do
    if [[ $cmd == /* ]]; then
        [[ -e $cmd ]] || missing+=("${pkg_of[$cmd]}")
    else
        command -v "$cmd" >/dev/null || missing+=("${pkg_of[$cmd]}")
    fi
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [[ ${RUN_BOARD_NO_INSTALL:-0} != 1 && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing: ${missing[*]}"
        timeout 600 apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    else
        die "missing packages: ${missing[*]} (as root: apt-get install ${missing[*]})"
    fi
fi
if [[ -z $bin ]]; then
    if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
        die "cargo/rustup missing: install Rust with rustup (Debian 13: apt-get install rustup), then re-run"
    fi
    if [[ ${RUN_BOARD_NO_INSTALL:-0} == 1 ]]; then
        "$ROOT/scripts/cross-build.sh" --check-only
    fi
fi

# --- build, fetch, pack ---
if [[ -z $bin ]]; then
    log "cross-building (the first build compiles every dependency: several minutes)"
    bin=$("$ROOT/scripts/cross-build.sh" | tail -n 1)
fi
# mkinitramfs.sh runs fetch.sh (Debian's arm64 kernel and busybox; cached after the first run).
initrd=$("$BOARD/mkinitramfs.sh" "$bin" | tail -n 1)

# --- boot ---
export BOARD_TIMEOUT=${BOARD_TIMEOUT:-28800}
# shellcheck source=SCRIPTDIR/../board/qemu-aarch64-virt/lib.sh
. "$BOARD/lib.sh"
tail_pid=
cleanup() {
    [[ -n $tail_pid ]] && kill "$tail_pid" 2>/dev/null
    echo >&2
    log "powering the guest off"
    board_poweroff
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "booting the board ($size, hard limit ${BOARD_TIMEOUT} s)"
board_boot --size "$size" --initrd "$initrd" || die "the board did not boot"

# Show the console while waiting for the agent's credentials.
tail -n +1 -f "$BOARD_LOG" &
tail_pid=$!
# The tag may follow a shell prompt on the same serial line.
line=$(board_wait_log 'THINSHADOW-CREDS \{' "$creds_timeout") || line=
kill "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true
tail_pid=

echo
if [[ -n $line ]]; then
    parsed=$(python3 -c '
import json, sys
d = json.loads(sys.argv[1].split("THINSHADOW-CREDS ", 1)[1])
print(d["user"]); print(d["password"]); print(d.get("cert_sha256", ""))
print((d.get("addresses") or [""])[0]); print(d.get("port", ""))
' "$line") || die "cannot parse: $line"
    {
        read -r user
        read -r password
        read -r fpr
        read -r addrs
        read -r gport
    } <<<"$parsed"
    echo "================================================================================"
    echo " thinshadow is up on the board (guest ${addrs:-10.0.2.15}:${gport:-3389}, forwarded to 127.0.0.1:$BOARD_PORT)"
    echo " Connect with:"
    printf '   xfreerdp /v:127.0.0.1:%s /u:%q /p:%q /cert:ignore\n' "$BOARD_PORT" "$user" "$password"
    echo " Certificate SHA-256: ${fpr:-?}"
    echo "   (instead of /cert:ignore, compare this with the fingerprint the client shows)"
    echo " The board runs as shipped: management mode allow-auto. After the login the admin sees"
    echo " a waiting screen, the board's screen a box with the request (Enter: accept, Esc: reject)."
    echo " The session starts after 30 s unless the local user rejects; then a box at the top of"
    echo " the board's screen says an administrator is connected (Ctrl+Alt+End ends the session)."
    echo " Act as the local user from the serial console below:"
    echo "   thinshadow accept | thinshadow reject       answer now"
    echo "   thinshadow terminate                        end the session (the client is told)"
    echo "   thinshadow view-only on|off                 the admin sees, but their input is dropped"
    echo "   thinshadow mode management allow-by-request|deny|allow-auto     thinshadow status"
    echo " Audit lines ({\"ts\":...,\"event\":...}) appear on the console as they happen."
    echo "================================================================================"
else
    echo "================================================================================"
    echo " No THINSHADOW-CREDS line from the guest within ${creds_timeout} s: the agent is not serving"
    echo " (yet). The restart messages above show what it did. The guest stays up; RDP would be at"
    echo " 127.0.0.1:$BOARD_PORT. In the guest: thinshadow creds --state-dir /var/lib/thinshadow --json"
    echo "================================================================================"
fi
echo " Screen from the host: python3 $BOARD/boardctl.py qmp $BOARD_DIR/qmp.sock \\"
echo "   '{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"/tmp/board.png\",\"format\":\"png\"}}'"

if [[ -t 0 && -t 1 ]]; then
    echo " Serial console attached (root shell; press Enter for a prompt). Ctrl+C powers the guest off."
    echo
    python3 "$BOARD/boardctl.py" attach "$BOARD_DIR/serial.sock" || true
else
    echo " Console output follows. Ctrl+C (SIGINT) or SIGTERM powers the guest off."
    echo
    tail -n 0 -f --pid="$BOARD_PID" "$BOARD_LOG" &
    tail_pid=$!
    wait "$tail_pid" || true
    tail_pid=
fi
