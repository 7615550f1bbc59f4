#!/usr/bin/env bash
# End to end with rdesktop 1.9 (Debian `rdesktop`): an RDP client that shares no code with
# FreeRDP or IronRDP. It needs an RSA certificate, Windows' finalization order (each answer as
# the client's PDU comes) and planar bitmaps with an alpha plane (it sets no
# DRAW_ALLOW_SKIP_ALPHA). Its CredSSP is Kerberos only, so it logs in with TLS security.
#
# Usage: scripts/e2e-rdesktop.sh        Env: THINSHADOW_BIN (default target/debug/thinshadow),
#        E2E_DEADLINE (seconds for the whole run, default 120).
# Cases: (a) the window equals the served picture pixel for pixel, (b) it follows a change,
#        (d) `-a 16`: the same, (e) a second admin is refused (exit 7), (f) the local user's
#        terminate ends it (exit 11), (c) a wrong password gets no session (login-failed audited,
#        no window, rdesktop exits 9 with the reason).
# Ends with "N passed, M failed"; non-zero exit when a case failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3
PIX=$HERE/e2e/pixels.py
BIN=${THINSHADOW_BIN:-$REPO/target/debug/thinshadow}
DEADLINE=${E2E_DEADLINE:-120}
W=1024 H=768

for tool in Xvfb rdesktop xdotool display timeout; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool (scripts/setup.sh installs it)" >&2; exit 2; }
done
[[ -x $BIN ]] || { echo "no thinshadow binary at $BIN (cargo build)" >&2; exit 2; }

LIMIT=$DEADLINE
# shellcheck source=SCRIPTDIR/lib/e2e-client.sh
. "$HERE/lib/e2e-client.sh"
e2e_begin rdesktop
xvfb src "${W}x${H}"
SRC_DPY=$DPY SRC_FB=$FB
xvfb cli 1280x1024
CLI_DPY=$DPY CLI_FB=$FB
"$PY" "$PIX" gen "$T/pic1.png" --variant 1 --size "${W}x${H}"
"$PY" "$PIX" gen "$T/pic2.png" --variant 2 --size "${W}x${H}"
paint "$T/pic1.png" || { echo "could not paint the source display" >&2; exit 2; }
serve_source

# rdesktop SESSION-NAME PASSWORD [ARGS]: in the background; "yes" trusts the certificate.
rdesktop_run() {
    mkdir -p "$T/home"
    echo yes | env HOME="$T/home" DISPLAY="$CLI_DPY" timeout -k 3 60 rdesktop -D -g "${W}x${H}" -u admin -p "$2" \
        "${@:3}" "127.0.0.1:$PORT" >"$T/$1.log" 2>&1 &
    RD_PID=$!
    PIDS+=("$RD_PID")
}
find_win() { WIN=$(DISPLAY=$CLI_DPY xdotool search --onlyvisible --name '^rdesktop' 2>/dev/null | head -n 1) && [[ -n $WIN ]]; }

# (a) and (b)
rdesktop_run session "$PASSWORD"
if wait_for 30 find_win; then
    X= Y=
    eval "$(DISPLAY=$CLI_DPY xdotool getwindowgeometry --shell "$WIN" | grep -E '^(X|Y)=[0-9]+$')"
    rc=0
    result=$("$PY" "$PIX" wait-match "$T/pic1.png" "$CLI_FB" --crop "$X,$Y,$W,$H" --timeout 20 2>&1) || rc=$?
    ((rc == 0)) && pass "a pixels" "rdesktop's window: $result" || fail "a pixels" "$result"
    paint "$T/pic2.png"
    rc=0
    result=$("$PY" "$PIX" wait-match "$T/pic2.png" "$CLI_FB" --crop "$X,$Y,$W,$H" --timeout 20 2>&1) || rc=$?
    ((rc == 0)) && pass "b change" "after the picture changed: $result" || fail "b change" "$result"
    if grep -q 'failed to decompress' "$T/session.log"; then
        fail "a bitmaps" "rdesktop could not read some bitmaps: $(grep -c 'failed to decompress' "$T/session.log") times"
    fi
else
    fail "a pixels" "no rdesktop window: $(tail -n 2 "$T/session.log" | tr '\n' '|'); agent: $(grep -E 'WARN|timed out' "$T/agent.log" | tail -n 2 | tr '\n' '|')"
fi
stop_pid "$RD_PID"

# (d) rdesktop -a 16 asks for 16 bpp and takes the server's 32 bpp (the Demand Active's).
wait_for 10 bash -c "! DISPLAY=$CLI_DPY xdotool search --onlyvisible --name '^rdesktop' >/dev/null 2>&1" || true
rdesktop_run depth16 "$PASSWORD" -a 16
if wait_for 30 find_win; then
    X= Y=
    eval "$(DISPLAY=$CLI_DPY xdotool getwindowgeometry --shell "$WIN" | grep -E '^(X|Y)=[0-9]+$')"
    rc=0
    result=$("$PY" "$PIX" wait-match "$T/pic2.png" "$CLI_FB" --crop "$X,$Y,$W,$H" --timeout 20 2>&1) || rc=$?
    ((rc == 0)) && pass "d -a 16" "$result" ||
        fail "d -a 16" "$result"
else
    fail "d -a 16" "no rdesktop window: $(tail -n 2 "$T/depth16.log" | tr '\n' '|')"
fi
stop_pid "$RD_PID"

# (e) a second admin while one is in session: refused with its reason (7); (f) the local user
# terminates the session: rdesktop says why and exits 11 (its exit code is the error info).
started=$(grep -c '"event":"session-started"' "$T/agent.log" || true)
rdesktop_run first "$PASSWORD"
FIRST=$RD_PID
# The first one's session is on before the second one comes.
if wait_for 30 find_win && wait_for 20 bash -c "[ \$(grep -c '\"event\":\"session-started\"' '$T/agent.log') -gt $started ]"; then
    rdesktop_run second "$PASSWORD"
    SECOND=$RD_PID rc=0
    wait "$SECOND" 2>/dev/null || rc=$?
    ((rc == 7)) && pass "e second admin" "rdesktop exit 7: $(grep 'disconnect:' "$T/second.log" | head -n 1)" ||
        fail "e second admin" "rdesktop exit $rc: $(grep -v '^ ' "$T/second.log" | tail -n 1)"
    "$BIN" terminate --control "$T/control.sock" >/dev/null
    rc=0
    wait "$FIRST" 2>/dev/null || rc=$?
    ((rc == 11)) && pass "f terminate" "rdesktop exit 11: $(grep 'disconnect:' "$T/first.log" | head -n 1)" ||
        fail "f terminate" "rdesktop exit $rc: $(grep -v '^ ' "$T/first.log" | tail -n 1)"
else
    fail "e second admin" "no first session: $(tail -n 2 "$T/first.log" | tr '\n' '|')"
fi

# (c) a wrong password: refused after Client Info, audited, and no window opens.
wait_for 10 bash -c "! DISPLAY=$CLI_DPY xdotool search --onlyvisible --name '^rdesktop' >/dev/null 2>&1" || true
rdesktop_run wrong "${PASSWORD}x"
if wait_for 20 grep -q '"event":"login-failed"' "$T/agent.log"; then
    rc=0
    wait "$RD_PID" 2>/dev/null || rc=$?
    if find_win; then
        fail "c wrong password" "a window opened"
    elif ((rc != 9)); then
        fail "c wrong password" "rdesktop exit $rc, not 9 (the error info a refused TLS login gets)"
    else
        pass "c wrong password" "login-failed audited, no session, rdesktop exit 9: $(grep 'disconnect:' "$T/wrong.log" | head -n 1)"
    fi
else
    fail "c wrong password" "no login-failed line: $(grep -E 'WARN|INFO' "$T/agent.log" | tail -n 3 | tr '\n' '|')"
fi
