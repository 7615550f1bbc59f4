#!/usr/bin/env bash
# Soak: the agent on a synthetic screen on loopback, N mixed cycles (wrong password, right
# password with a few frames, half-open and half-TLS handshakes), then a client that stops
# reading while the screen changes. Fails if the agent's RSS grows > 1 MiB after warm-up or
# it holds more fds than after warm-up. Bounded: it ends by itself.
#   scripts/soak.sh [--cycles N] [--slow-secs S] [--release]
# Debug build by default (cargo test already built it); --release for the shipped profile.
# Wrong passwords come from 127.0.1.x sources and stalled handshakes from 127.0.2.x (200 in
# turn each), so the lockout and the per-address handshake cap
# stay as configured and are exercised, and the right password (from 127.0.0.1) is never held.
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=1000 slow=60 profile=debug
while [ $# -gt 0 ]; do
  case "$1" in
    --cycles) cycles=$2; shift 2 ;;
    --slow-secs) slow=$2; shift 2 ;;
    --release) profile=release; shift ;;
    *) echo "usage: $0 [--cycles N] [--slow-secs S] [--release]" >&2; exit 2 ;;
  esac
done

flags=(); [ "$profile" = release ] && flags=(--release)
cargo build --quiet "${flags[@]}" --bin thinshadow --example soak
bin=target/$profile/thinshadow
driver=target/$profile/examples/soak

work=$(mktemp -d)
agent_pid=
cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
THINSHADOW_LOG=${THINSHADOW_LOG:-warn} "$bin" serve --listen "127.0.0.1:$port" \
  --screen synthetic:320x240 --state-dir "$work/state" --control "$work/control.sock" \
  --handshake-timeout 2 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$work/control.sock" ] && break; sleep 0.1; done
password=$("$bin" creds --state-dir "$work/state" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])')

echo "soak: $profile agent pid $agent_pid on 127.0.0.1:$port, $cycles cycles, slow reader ${slow} s"
status=0
timeout $((cycles + slow + 300)) nice -n 10 "$driver" --addr "127.0.0.1:$port" --password "$password" \
  --pid "$agent_pid" --control "$work/control.sock" --cycles "$cycles" --slow-secs "$slow" || status=$?
kill -0 "$agent_pid" 2>/dev/null || { echo "soak: the agent died"; tail -20 "$work/agent.log"; exit 1; }
if [ "$status" -ne 0 ]; then
  echo "soak: FAILED"; tail -20 "$work/agent.log"; exit "$status"
fi
