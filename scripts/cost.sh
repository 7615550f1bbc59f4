#!/usr/bin/env bash
# Instructions per frame of the damage scan and the encoder, counted by cachegrind, so a change
# shows its effect exactly on a noisy shared machine (examples/cost.rs runs the frames).
#
# Usage: scripts/cost.sh [--frames N] [--target aarch64]
#   Prints, per scenario (a still test card, one text line changing, the bench's workload) and
#   size (1024x768, 1920x1080), the instructions per frame of the scan, of the encode and of the
#   bulk compression of the encoder's output (MPPC-64K, what every client from RDP 5 on gets), with
#   the agent's sampled scans (on) and with every row hashed every scan (off, the old way).
#   Each count is (run with N frames - run with 0 frames) / N.
#   --target aarch64: the static aarch64 build under qemu-aarch64-static, counted with its
#   insn plugin if this qemu has one (it says so when not).
set -euo pipefail
cd "$(dirname "$0")/.."

frames=16
target=host
while (($#)); do
    case $1 in
    --frames) frames=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    *) echo "usage: $0 [--frames N] [--target aarch64]" >&2; exit 2 ;;
    esac
done

command -v valgrind >/dev/null || { echo "cost: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
if [[ $target == aarch64 ]]; then
    echo "cost: counting aarch64 instructions needs qemu's TCG plugins (libinsn.so), which" >&2
    echo "cost: Debian's qemu-user-static does not ship; only x86-64 counts are made here" >&2
    exit 1
fi
cargo build --quiet --release --example cost
bin=target/release/examples/cost
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() { # scenario size frames sampling phases -> instructions
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$bin" "$@" \
        2>&1 >/dev/null | awk '/I *refs:/ { gsub(",", "", $NF); print $NF }'
}

per_frame() { # scenario size sampling phases
    local zero n
    zero=$(count "$1" "$2" 0 "$3" "$4")
    n=$(count "$1" "$2" "$frames" "$3" "$4")
    echo $(((n - zero) / frames))
}

scenarios=(static line)
if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
    for size in 1024x768 1920x1080; do
        /usr/bin/python3 scripts/bench/bench.py frames --size "$size" --count 40 \
            --out "$work/workload-$size.raw" >/dev/null
    done
    scenarios+=(workload)
fi

printf '%-9s %-10s %-8s %14s %14s %14s\n' scenario size sampling "scan/frame" "encode/frame" "bulk/frame"
for scenario in "${scenarios[@]}"; do
    for size in 1024x768 1920x1080; do
        spec=$scenario
        [[ $scenario == workload ]] && spec=replay:$work/workload-$size.raw
        for sampling in off on; do
            scan=$(per_frame "$spec" "$size" "$sampling" damage)
            all=$(per_frame "$spec" "$size" "$sampling" all)
            bulk=$(per_frame "$spec" "$size" "$sampling" bulk)
            printf '%-9s %-10s %-8s %14d %14d %14d\n' "$scenario" "$size" "$sampling" "$scan" $((all - scan)) $((bulk - all))
        done
    done
done
echo "instructions (x86-64, valgrind cachegrind), per frame after the first full scan; $frames frames a run"
