#!/usr/bin/env bash
# Run the library's unit tests built for aarch64-unknown-linux-musl under qemu-aarch64-static.
#
# Usage: scripts/test-aarch64.sh [extra cargo test args, e.g. -- --nocapture]
#   = cargo test --lib --target aarch64-unknown-linux-musl, with Debian's aarch64-linux-gnu-gcc as
#     linker and C compiler and qemu-aarch64-static as the runner (binfmt need not be registered).
# Env: TEST_AARCH64_TIMEOUT (default 3600 s; the first run builds every dependency for aarch64).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=aarch64-unknown-linux-musl
RUNNER=qemu-aarch64-static

log() { echo "test-aarch64: $*" >&2; }

"$ROOT/scripts/cross-build.sh" --setup
if ! command -v "$RUNNER" >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing qemu-user-static"
        timeout 900 apt-get install -y -q qemu-user-static >&2
    else
        log "error: $RUNNER missing (as root: apt-get install qemu-user-static)"
        exit 1
    fi
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=$RUNNER
export CC_aarch64_unknown_linux_musl=${CC_aarch64_unknown_linux_musl:-aarch64-linux-gnu-gcc}
export AR_aarch64_unknown_linux_musl=${AR_aarch64_unknown_linux_musl:-aarch64-linux-gnu-ar}

cd "$ROOT"
exec timeout -k 30 "${TEST_AARCH64_TIMEOUT:-3600}" cargo test --lib --target "$TARGET" "$@"
