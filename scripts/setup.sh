#!/usr/bin/env bash
# Installs what building and testing thinshadow needs on Debian, or says what is missing.
# Idempotent: a second run only checks. Used by scripts/test.sh, scripts/run-board.sh and .ci/run.
set -euo pipefail

APT_PACKAGES=(
  gcc-aarch64-linux-gnu qemu-user-static qemu-system-arm kmod cpio   # aarch64 build, tests, board
  freerdp2-x11 rdesktop xvfb x11-apps xdotool imagemagick python3-pil         # real-client end-to-end tests
  xz-utils binutils python3                                          # board: kernel modules, initramfs, QMP
)
RUST_TARGET=aarch64-unknown-linux-musl

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing: install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$RUST_TARGET"; then
  echo "setup: adding the $RUST_TARGET target"
  rustup target add "$RUST_TARGET" >/dev/null
fi
