# The harness the one-client end-to-end scripts share (sourced): a temp dir, checks counted,
# every process stopped at exit, a source Xvfb showing a picture, the agent serving it.
# Needs HERE, PY, PIX, BIN and LIMIT (seconds any started process may live) set first.

# shellcheck source=SCRIPTDIR/procs.sh
. "$HERE/lib/procs.sh"

PIDS=() PASSED=0 FAILED=0
e2e_cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
    echo "$PASSED passed, $FAILED failed"
    ((FAILED)) && echo "logs kept in $T" || rm -rf "$T"
    ((FAILED == 0))
}

# e2e_begin NAME: the temp dir T (kept when a check failed) and the exit trap.
e2e_begin() {
    T=$(mktemp -d "/tmp/thinshadow-$1.XXXXXX")
    trap e2e_cleanup EXIT
}

# xvfb NAME WxH: an Xvfb whose screen is a file; sets DPY and FB.
xvfb() {
    DEADLINE=$LIMIT start_xvfb "$1" "$2"
    DPY=$XVFB_DISPLAY FB=$XVFB_FB
}

# paint PNG: the source Xvfb (SRC_DPY, SRC_FB) shows it.
paint() {
    DISPLAY=$SRC_DPY timeout 15 display -window root "$1" >/dev/null 2>&1 || true
    "$PY" "$PIX" wait-match "$1" "$SRC_FB" --timeout 5 >/dev/null
}

# serve_source: the agent on the source's screen file, sessions at once (the shipped
# default asks the local user for 30 s); sets PORT and PASSWORD.
serve_source() {
    PORT=$("$PY" "$PIX" freeport)
    timeout -k 3 "$LIMIT" "$BIN" serve --listen "127.0.0.1:$PORT" --screen "xwd:$SRC_FB" --state-dir "$T/state" \
        --control "$T/control.sock" --consent-timeout-auto 0 >"$T/agent.log" 2>&1 &
    PIDS+=("$!")
    wait_for 30 test -S "$T/control.sock" || { echo "the agent did not start: $(tail -n 3 "$T/agent.log")" >&2; exit 2; }
    PASSWORD=$("$BIN" creds --state-dir "$T/state" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["password"])')
}
