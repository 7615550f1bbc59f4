#!/usr/bin/env bash
# Per-frame costs (benches/frame.rs) on this x86 host and built for aarch64-unknown-linux-musl
# under qemu-aarch64-static, and each aarch64/x86 time ratio (issue 7). The aarch64 figures are
# emulated: compare them only between versions of thinshadow, never with real hardware.
#
# Usage: scripts/bench-aarch64.sh
# Env: BENCH_AARCH64_TIMEOUT (default 3600 s; the first run builds every dependency for aarch64).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=aarch64-unknown-linux-musl
RUNNER=qemu-aarch64-static
command -v "$RUNNER" >/dev/null || { echo "missing $RUNNER (apt-get install qemu-user-static)" >&2; exit 2; }
"$ROOT/scripts/cross-build.sh" --setup

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=$RUNNER
export CC_aarch64_unknown_linux_musl=${CC_aarch64_unknown_linux_musl:-aarch64-linux-gnu-gcc}
export AR_aarch64_unknown_linux_musl=${AR_aarch64_unknown_linux_musl:-aarch64-linux-gnu-ar}

cd "$ROOT"
T=$(mktemp -d /tmp/thinshadow-bench-aarch64.XXXXXX)
trap 'rm -rf "$T"' EXIT
limit=${BENCH_AARCH64_TIMEOUT:-3600}
echo "x86_64 (native):"
timeout -k 30 "$limit" cargo bench -q --bench frame 2>/dev/null | tee "$T/x86.txt"
echo
echo "aarch64 (qemu-aarch64-static):"
timeout -k 30 "$limit" cargo bench -q --bench frame --target "$TARGET" 2>/dev/null | tee "$T/arm.txt"
echo
/usr/bin/python3 - "$T/x86.txt" "$T/arm.txt" <<'EOF'
import re, sys

def rows(path):
    out = {}
    for line in open(path):
        m = re.match(r"^(desktop|photo)\s+(\d+x\d+)\s*\|(.*)$", line)
        if m:
            ms = [float(v) for v in re.findall(r"([\d.]+) ms", m.group(3))]
            out[(m.group(1), m.group(2))] = ms
    return out

x86, arm = rows(sys.argv[1]), rows(sys.argv[2])
names = ["memcpy hot", "scan hot", "memcpy cold", "scan cold", "full encode", "1 tile"]
print("aarch64 (emulated) / x86 time ratio")
print(f"{'picture':<20}" + "".join(f"{n:>13}" for n in names))
for key in x86:
    if key in arm and len(x86[key]) == len(names) == len(arm[key]):
        ratios = [a / x if x else float("nan") for a, x in zip(arm[key], x86[key])]
        print(f"{key[0] + ' ' + key[1]:<20}" + "".join(f"{r:>12.1f}x" for r in ratios))
EOF
