#!/usr/bin/env bash
# Installs what building and testing thinshadow needs on Debian, or says what is missing.
# Idempotent: a second run only checks. Used by scripts/test.sh, scripts/run-board.sh and .ci/run.
set -euo pipefail

# With --no-install-recommends every package a fresh Debian 12 lacks is named here, including
# what Debian only recommends: libc6-dev-arm64-cross (headers for ring's and libz-sys's aarch64
# C code), ipxe-qemu (efi-virtio.rom for virtio-net-pci), gcc + libc6-dev (host `cc` for build
# scripts), iproute2 (`ss`, e2e).
APT_PACKAGES=(
  gcc libc6-dev                                                      # host C compiler and linker
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static       # aarch64 build and unit tests
  qemu-system-arm ipxe-qemu kmod cpio xz-utils binutils python3      # board: boot, modules, initramfs, QMP
  freerdp2-x11 rdesktop xvfb x11-apps xdotool imagemagick python3-pil  # real-client end-to-end tests
  iproute2 procps ca-certificates python3-venv                       # ss (e2e), ps (bench), HTTPS, aardwolf's venv
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
