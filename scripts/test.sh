#!/usr/bin/env bash
# Runs every test: unit and integration tests (in-process IronRDP client), the same unit
# tests for aarch64 under qemu-user, the real-FreeRDP end-to-end test, and the QEMU board test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

step() { printf '\n=== %s\n' "$*"; }

step "licences of every shipped crate"
scripts/check-licenses.sh

step "cargo test (host)"
cargo test

step "the files the Buildroot package ships (settings, first-boot modes, init script)"
cargo build --quiet
scripts/check-shipped.sh

step "shortened soak (100 cycles, slow reader 5 s)"
scripts/soak.sh --cycles 100 --slow-secs 5

if [ -x scripts/test-aarch64.sh ]; then
  step "unit tests for aarch64 under qemu-aarch64-static"
  scripts/test-aarch64.sh
fi

step "aarch64 release binary: static, stripped, at most 3 MiB"
aarch64_bin=$(scripts/cross-build.sh --example kmsdemo | tail -n 1)   # the board tests boot this one
size=$(stat -c %s "$aarch64_bin")
limit=$((3 * 1024 * 1024))
echo "size: $size bytes (limit $limit)"
if [ "$size" -gt "$limit" ]; then
  echo "the aarch64 binary is $size bytes, over the 3 MiB a thin client's flash budget allows" >&2
  exit 1
fi
# The test hooks (cargo feature test-hooks) are for tests only.
if grep -q '__state-writer' "$aarch64_bin"; then
  echo "the aarch64 binary carries the test hooks (__state-writer)" >&2
  exit 1
fi
echo "no test hooks in it"

if [ -x scripts/e2e-freerdp.sh ]; then
  step "end to end with xfreerdp"
  cargo build --quiet
  scripts/e2e-freerdp.sh
  step "end to end with rdesktop (no FreeRDP or IronRDP code: RSA, Windows' finalization order, alpha plane)"
  scripts/e2e-rdesktop.sh
  step "end to end with aardwolf (pip; SPNEGO like mstsc, Windows' leniency)"
  scripts/e2e-aardwolf.sh
fi

if [ -x scripts/test-board.sh ]; then
  step "QEMU aarch64 board"
  THINSHADOW_BIN=$aarch64_bin scripts/test-board.sh
  step "QEMU aarch64 board: a DRM master owns the display (the KMS source, --screen auto): kmsdemo, then Weston"
  THINSHADOW_BIN=$aarch64_bin KMSDEMO_BIN=$(dirname "$aarch64_bin")/examples/kmsdemo scripts/test-board-kms.sh
  step "QEMU aarch64 board on cirrus-vga: an RGB565 DRM master (the KMS source, --screen auto)"
  THINSHADOW_BIN=$aarch64_bin KMSDEMO_BIN=$(dirname "$aarch64_bin")/examples/kmsdemo scripts/test-board-kms.sh --rgb565
fi
step "all tests passed"
