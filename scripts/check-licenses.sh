#!/usr/bin/env bash
# Licence check of every crate the agent links, for CI: cargo deny check licenses with the
# allowlist in scripts/deny.toml. Installs cargo-deny (cargo install --locked cargo-deny) when
# it is missing; CHECK_LICENSES_NO_INSTALL=1 makes a missing cargo-deny an error instead.
#
# Usage: scripts/check-licenses.sh [--list]
#   --list   also print every licence expression in the tree and the crates under it
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFIG=$ROOT/scripts/deny.toml

log() { echo "check-licenses: $*" >&2; }

if ! cargo deny --version >/dev/null 2>&1; then
    if [[ ${CHECK_LICENSES_NO_INSTALL:-0} == 1 ]]; then
        log "error: cargo-deny missing (cargo install --locked cargo-deny)"
        exit 1
    fi
    log "installing cargo-deny (cargo install --locked cargo-deny; compiles it, takes minutes)"
    start=$SECONDS
    timeout -k 30 "${CARGO_DENY_INSTALL_TIMEOUT:-3600}" cargo install --locked cargo-deny >&2
    log "cargo-deny installed in $((SECONDS - start)) s"
fi
log "$(cargo deny --version)"

cd "$ROOT"
deny=(cargo deny --manifest-path "$ROOT/Cargo.toml" --config "$CONFIG" --locked)
if [[ ${1:-} == --list ]]; then
    timeout 300 "${deny[@]}" list --layout license >&2
fi
exec timeout 600 "${deny[@]}" check --show-stats licenses
