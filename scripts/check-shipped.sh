#!/usr/bin/env bash
# Checks the files the Buildroot package ships, with the host build of the agent:
#   - /etc/thinshadow.toml as shipped, and with every commented key turned on, is accepted by
#     `serve` (it reaches "listening on"; an unknown or malformed key would stop it);
#   - thinshadow-modes sets the first boot's modes only while no state exists (a later change is kept);
#   - S99thinshadow and thinshadow-modes parse as POSIX sh.
# Usage: scripts/check-shipped.sh [BIN]   (default target/debug/thinshadow; loopback only)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=$(realpath "${1:-target/debug/thinshadow}")
PKG=buildroot/package/thinshadow
T=$(mktemp -d /tmp/thinshadow-shipped.XXXXXX)
trap 'rm -rf "$T"' EXIT
failed=0
ok() { echo "PASS $*"; }
bad() { echo "FAIL $*"; failed=1; }

serves() { # serves NAME TOML: serve with TOML for up to 3 s; true if it listened
    timeout 3 "$BIN" serve --config "$2" --listen 127.0.0.1:0 --screen synthetic:64x64 \
        --state-dir "$T/$1-state" --control "$T/$1.sock" --audit-file "$T/$1-audit.log" \
        --local-prompt off >"$T/$1.log" 2>&1 </dev/null || true
    grep -q 'INFO  *listening on 127.0.0.1:' "$T/$1.log" && ! grep -q 'ERROR' "$T/$1.log"
}
if serves shipped "$PKG/thinshadow.toml"; then ok "thinshadow.toml as shipped"; else bad "thinshadow.toml as shipped: $(tail -n 1 "$T/shipped.log")"; fi
sed -n 's/^#\([a-z_]* = .*\)$/\1/p' "$PKG/thinshadow.toml" >"$T/all.toml"
n=$(wc -l <"$T/all.toml")
if ((n >= 20)) && serves all "$T/all.toml"; then
    ok "thinshadow.toml with its $n commented keys on"
else
    bad "thinshadow.toml with its $n commented keys on: $(tail -n 1 "$T/all.log")"
fi

modes() { STATE_DIR=$T/modes THINSHADOW=$BIN THINSHADOW_MANAGEMENT_MODE=$1 sh "$PKG/thinshadow-modes" >/dev/null 2>&1; }
saved() { # the management mode an agent on the state reports (`status` on its control socket)
    local pid i out=
    timeout 10 "$BIN" serve --listen 127.0.0.1:0 --screen synthetic:64x64 --state-dir "$T/modes" \
        --control "$T/modes.sock" --local-prompt off >>"$T/modes.log" 2>&1 </dev/null &
    pid=$!
    for i in $(seq 1 50); do
        out=$(timeout 3 "$BIN" status --control "$T/modes.sock" 2>/dev/null) && break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    grep -o '"management":"[a-z-]*"' <<<"$out"
}
first= second=
if modes deny && first=$(saved) && modes allow-by-request && second=$(saved) &&
    [[ $first == '"management":"deny"' && $second == "$first" ]]; then
    ok "thinshadow-modes: the first boot's mode saved ($first), a second run with another mode changes nothing"
else
    bad "thinshadow-modes: after the first run $first, after the second $second (want deny both times)"
fi
for f in "$PKG/S99thinshadow" "$PKG/thinshadow-modes"; do
    if sh -n "$f"; then ok "$f parses"; else bad "$f does not parse"; fi
done
exit "$failed"
