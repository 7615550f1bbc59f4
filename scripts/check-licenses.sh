#!/usr/bin/env bash
# Licence check of every crate the agent ships (normal and build dependencies for the
# firmware target), from `cargo metadata`: each crate's SPDX expression must be satisfiable
# with the allowlist in scripts/licenses.py. No tool to install, so CI stays fast.
#
# Usage: scripts/check-licenses.sh [--list]   (--list prints every crate with its licence)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo metadata --locked --format-version 1 --filter-platform aarch64-unknown-linux-musl \
    | python3 scripts/licenses.py "$@"
