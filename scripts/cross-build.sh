#!/usr/bin/env bash
# Cross-build the static, stripped aarch64 (musl) release binary of thinshadow.
#
# Usage: scripts/cross-build.sh [--check-only|--setup] [extra cargo build args...]
#
# Needs: rustup target aarch64-unknown-linux-musl, Debian's gcc-aarch64-linux-gnu (the linker, and
# the C compiler for ring's aarch64 objects). Missing pieces are installed when we can (rustup; apt-get
# as root), otherwise the script says exactly what is missing. `--check-only` installs nothing;
# `--setup` installs what is missing and stops there (scripts/test-aarch64.sh uses it).
#
# The release profile comes from Cargo.toml; try others without editing it, e.g.
#   CARGO_PROFILE_RELEASE_OPT_LEVEL=z scripts/cross-build.sh
# Prints the binary's path, then its size in bytes and MiB. The last line of stdout is the path.
set -euo pipefail

TARGET=aarch64-unknown-linux-musl
LINKER=aarch64-linux-gnu-gcc
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_TIMEOUT=${CROSS_BUILD_TIMEOUT:-3600}

check_only=0
setup_only=0
case ${1:-} in
--check-only) check_only=1; shift ;;
--setup) setup_only=1; shift ;;
esac

log() { echo "cross-build: $*" >&2; }
die() { log "error: $*"; exit 1; }

missing=()

# Rust toolchain and the musl target.
if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
    die "cargo/rustup not found on PATH (install rustup from your distribution or rustup.rs, then re-run)"
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    if ((check_only)); then
        missing+=("rust target $TARGET (run: rustup target add $TARGET)")
    else
        log "installing rust target $TARGET"
        timeout 600 rustup target add "$TARGET"
    fi
fi

# Cross C compiler / linker.
if ! command -v "$LINKER" >/dev/null; then
    if ((check_only)); then
        missing+=("$LINKER (run: apt-get install gcc-aarch64-linux-gnu)")
    elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing gcc-aarch64-linux-gnu"
        timeout 900 apt-get install -y -q gcc-aarch64-linux-gnu >&2 ||
            { timeout 300 apt-get update -q >&2 && timeout 900 apt-get install -y -q gcc-aarch64-linux-gnu >&2; }
    else
        missing+=("$LINKER (as root: apt-get install gcc-aarch64-linux-gnu)")
    fi
fi

if ((${#missing[@]})); then
    for m in "${missing[@]}"; do log "missing: $m"; done
    exit 1
fi
if ((check_only || setup_only)); then
    log "all build prerequisites present"
    exit 0
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=$LINKER
# ring (and any other cc-crate user) compiles its aarch64 C/asm with the same compiler.
export CC_aarch64_unknown_linux_musl=${CC_aarch64_unknown_linux_musl:-$LINKER}
export AR_aarch64_unknown_linux_musl=${AR_aarch64_unknown_linux_musl:-aarch64-linux-gnu-ar}
# panic = "abort" never unwinds: the unwind tables (.eh_frame, ~350 KB here) only serve
# backtraces, which a stripped binary cannot symbolize anyway. The 3 MiB budget needs them gone.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS:--C force-unwind-tables=no}

log "building $TARGET release in $ROOT (timeout ${BUILD_TIMEOUT}s)"
(cd "$ROOT" && timeout "$BUILD_TIMEOUT" cargo build --release --target "$TARGET" --bin thinshadow) >&2
# Examples (kmsdemo, scanbench) on their own: building them turns on the dev-dependencies'
# test hooks, which must stay out of the shipped binary above.
if (($#)); then
    (cd "$ROOT" && timeout "$BUILD_TIMEOUT" cargo build --release --target "$TARGET" "$@") >&2
fi

bin="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/thinshadow"
[[ -f $bin ]] || die "build finished but $bin is missing"

# Static: no program interpreter and no shared-library dependencies.
if readelf -lW "$bin" | grep -q 'Requesting program interpreter' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
    die "$bin is dynamically linked"
fi
# Stripped: strip=true in the profile; strip again if an override turned it off.
if readelf -SW "$bin" | grep -qE '\.symtab|\.debug_'; then
    log "binary has symbols; stripping"
    aarch64-linux-gnu-strip "$bin"
fi

size=$(stat -c %s "$bin")
mib=$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')
echo "binary: $bin" >&2
echo "size: $size bytes ($mib MiB), static, stripped" >&2
echo "$bin"
