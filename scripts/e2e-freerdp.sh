#!/usr/bin/env bash
# End-to-end test of an RDP server with the real FreeRDP 2.11 client (xfreerdp).
#
# A "source" Xvfb with -fbdir stands in for the thin client's framebuffer: its memory-mapped
# XWD file is what the server under test serves. A known picture is painted on it, xfreerdp
# connects from a second ("client") Xvfb, and the client's window is compared pixel for pixel
# with the picture.
#
# Usage: scripts/e2e-freerdp.sh [--server thinshadow|freerdp-shadow] [--bin PATH]
#                               [--artifacts DIR] [--keep]
#   --server thinshadow      (default) ${THINSHADOW_BIN:-target/debug/thinshadow} serve ...
#   --server freerdp-shadow  FreeRDP's freerdp-shadow-cli on the source display (harness check)
#   --bin PATH               thinshadow binary (same as THINSHADOW_BIN)
#   --artifacts DIR          copy logs, pictures and diffs there at exit (same as E2E_ARTIFACTS)
# Environment: E2E_SERVER, THINSHADOW_BIN, THINSHADOW_SERVE_ARGS (extra words for `serve`),
#              E2E_ARTIFACTS, E2E_DEADLINE (seconds for the whole run, default 180),
#              E2E_SKIP (case letters to skip, e.g. "ce"),
#              E2E_XFREERDP_ARGS (extra xfreerdp words, e.g. "/rfx" to see a lossy codec fail).
# The server gets E2E_SOURCE_DISPLAY (the source Xvfb's display) in its environment; only
# the test double scripts/e2e/fake-thinshadow uses it.
#
# Cases: (a) NLA shows the source's pixels, (m) a client with a bitmap cache (+bitmap-cache)
# follows picture flips pixel for pixel with tiles from its cache, (b) a wrong password fails with the auth failure
# exit code, (c) TLS shows the pixels, (d) the client follows picture changes, (e) TLS with a
# wrong password is refused (skipped where the server has no TLS password check), (f) scrolling
# and sideways-moved regions: the client follows pixel for pixel, (g) thinshadow sent them as
# copies, some sideways (its session end line counts them); thinshadow only, against a second
# server with the shipped consent defaults (scripts/e2e/policy-cases.sh): every refusal reaches
# xfreerdp as its error info: (h) reject 7, (i) terminate 11, (j) Deny 7, (k) a refusing timeout
# 7, (l) a second admin while one is in session 7.
# Ends with one line "N passed, M failed" (", K skipped" when some were skipped).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PY=/usr/bin/python3
PIX="$HERE/e2e/pixels.py"

SERVER="${E2E_SERVER:-thinshadow}"
BIN="${THINSHADOW_BIN:-target/debug/thinshadow}"
ARTIFACTS="${E2E_ARTIFACTS:-}"
DEADLINE="${E2E_DEADLINE:-180}"
SKIP_CASES="${E2E_SKIP:-}"
SRC_W=1024
SRC_H=768

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --server=*) SERVER="${1#*=}"; shift ;;
        --bin) BIN="$2"; shift 2 ;;
        --bin=*) BIN="${1#*=}"; shift ;;
        --artifacts) ARTIFACTS="$2"; shift 2 ;;
        --artifacts=*) ARTIFACTS="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$SERVER" in thinshadow|freerdp-shadow) ;; *) echo "unknown --server $SERVER" >&2; exit 2 ;; esac
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac

for tool in Xvfb xfreerdp xdotool display ss timeout; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
"$PY" -c 'import PIL' 2>/dev/null || { echo "$PY lacks PIL (apt-get install python3-pil)" >&2; exit 2; }
if [ "$SERVER" = freerdp-shadow ]; then
    command -v freerdp-shadow-cli >/dev/null || { echo "missing freerdp-shadow-cli" >&2; exit 2; }
elif [ ! -x "$BIN" ]; then
    echo "thinshadow binary not found at $BIN (cargo build, or set THINSHADOW_BIN / --bin)" >&2
    exit 2
fi

# --------------------------------------------------------------------------- lifecycle

T="$(mktemp -d /tmp/thinshadow-e2e.XXXXXX)"
PIDS=()          # everything we started, each wrapped in `timeout` so it dies on its own too
WATCHDOG=""
PASSED=0
FAILED=0
SKIPPED=0

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck source=SCRIPTDIR/lib/procs.sh
. "$HERE/lib/procs.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$WATCHDOG" ] && { kill "$WATCHDOG" 2>/dev/null || true; wait "$WATCHDOG" 2>/dev/null || true; }
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
    if [ -n "$ARTIFACTS" ]; then
        mkdir -p "$ARTIFACTS"
        # No state dir, SAM file or keys: only logs and pictures.
        find "$T" -maxdepth 1 -type f \( -name '*.log' -o -name '*.png' \) -exec cp {} "$ARTIFACTS"/ \; 2>/dev/null || true
        echo "artifacts in $ARTIFACTS" >&2
    fi
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
on_term() {
    log "terminated"
    FAILED=$((FAILED + 1))
    echo "FAIL run: terminated (the whole-run deadline is ${DEADLINE}s, E2E_DEADLINE)"
    summary
    exit 124
}
trap on_term TERM

summary() {
    if [ "$SKIPPED" -gt 0 ]; then
        echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    else
        echo "$PASSED passed, $FAILED failed"
    fi
}

# The whole run is bounded: the watchdog sends TERM to this script, whose trap cleans up.
MAIN_PID=$$
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$DEADLINE" &
    sp=$!
    wait "$sp" && kill -TERM "$MAIN_PID" 2>/dev/null
) >/dev/null 2>&1 &
WATCHDOG=$!

# --------------------------------------------------------------------------- pictures and source

log "temp dir $T, server $SERVER"
"$PY" "$PIX" gen "$T/pic1.png" --variant 1 --size "${SRC_W}x${SRC_H}"
"$PY" "$PIX" gen "$T/pic2.png" --variant 2 --size "${SRC_W}x${SRC_H}"
CLI_SIZE=1280x1024
"$PY" "$PIX" solid "$T/blank.png" --size "$CLI_SIZE" --rgb 255,0,128

start_xvfb src "${SRC_W}x${SRC_H}"
SRC_DISPLAY="$XVFB_DISPLAY"
SRC_FB="$XVFB_FB"
start_xvfb cli "$CLI_SIZE"
CLI_DISPLAY="$XVFB_DISPLAY"
CLI_FB="$XVFB_FB"
log "source display $SRC_DISPLAY ($SRC_FB), client display $CLI_DISPLAY"

paint() { # paint PNG: make it the source's root window and check the framebuffer shows it
    # ImageMagick's display exits 1 even when it painted the root window.
    DISPLAY="$SRC_DISPLAY" timeout 15 display -window root "$1" >>"$T/paint.log" 2>&1 || true
    if ! "$PY" "$PIX" wait-match "$1" "$SRC_FB" --timeout 5 >>"$T/paint.log" 2>&1; then
        REASON="painting $(basename "$1") on the source display failed: $(tail -n 1 "$T/paint.log")"
        return 1
    fi
}
paint "$T/pic1.png" || { echo "$REASON" >&2; exit 2; }

# --------------------------------------------------------------------------- server under test

PORT="$("$PY" "$PIX" freeport)"
mkdir -p "$T/client-home" "$T/server-home"
TLS_CHECKS_PASSWORD=1

if [ "$SERVER" = thinshadow ]; then
    STATE="$T/state"
    mkdir -p "$STATE"
    # shellcheck disable=SC2086  # THINSHADOW_SERVE_ARGS is a list of words on purpose
    # Cases a-g need sessions at once: allow-auto with no consent wait, set here on purpose
    # (the shipped default asks the local user for 30 s). Its own control socket, not /run's.
    start server $((DEADLINE + 10)) env E2E_SOURCE_DISPLAY="$SRC_DISPLAY" "$BIN" serve --listen "127.0.0.1:$PORT" \
        --screen "xwd:$SRC_FB" --state-dir "$STATE" --control "$T/control.sock" --consent-timeout-auto 0 \
        ${THINSHADOW_SERVE_ARGS:-}
    SERVER_PID=$LAST_PID
else
    # FreeRDP's own shadow server on the source display. NLA needs a WinPR SAM file (NT hash);
    # -auth turns off its PAM check (else TLS logons need a system account); +sec-nla because
    # shadow.c turns NLA off by default; -sec-rdp: no legacy RDP security.
    E2E_USER="admin"
    E2E_PASS="e2e-$("$PY" -c 'import secrets; print(secrets.token_hex(8))')"
    "$PY" "$PIX" sam-line "$E2E_USER" "$E2E_PASS" >"$T/sam"
    chmod 600 "$T/sam"
    start server $((DEADLINE + 10)) \
        env HOME="$T/server-home" XDG_CONFIG_HOME="$T/server-home" DISPLAY="$SRC_DISPLAY" \
        freerdp-shadow-cli "/port:$PORT" /bind-address:127.0.0.1 \
        +sec-nla -sec-rdp -auth "/sam-file:$T/sam"
    SERVER_PID=$LAST_PID
    TLS_CHECKS_PASSWORD=0
fi

server_up() { kill -0 "$SERVER_PID" 2>/dev/null; }
listening_or_dead() { port_listening "$PORT" || ! server_up; }
if ! wait_for 30 listening_or_dead || ! server_up; then
    echo "server did not come up on 127.0.0.1:$PORT:" >&2; tail -n 30 "$T/server.log" >&2; exit 2
fi
log "server listening on 127.0.0.1:$PORT"

if [ "$SERVER" = thinshadow ]; then
    if ! timeout 15 "$BIN" creds --state-dir "$STATE" --json >"$T/creds.json" 2>"$T/creds.log"; then
        echo "thinshadow creds failed:" >&2; cat "$T/creds.log" >&2; exit 2
    fi
    # One value per line: user, password, port.
    if ! "$PY" -c '
import json, sys
c = json.load(open(sys.argv[1]))
print(c["user"]); print(c["password"]); print(c.get("port", ""))
' "$T/creds.json" >"$T/creds.txt" 2>>"$T/creds.log"; then
        echo "thinshadow creds --json: unexpected output:" >&2; cat "$T/creds.log" >&2; exit 2
    fi
    E2E_USER="$(sed -n 1p "$T/creds.txt")"
    E2E_PASS="$(sed -n 2p "$T/creds.txt")"
    creds_port="$(sed -n 3p "$T/creds.txt")"
    rm -f "$T/creds.txt" "$T/creds.json"
    [ "$creds_port" = "$PORT" ] || log "warning: creds --json says port '$creds_port', serving on $PORT"
fi
WRONG_PASS="${E2E_PASS}x"

# --------------------------------------------------------------------------- client

# Flags, and why:
#   /bpp:32       any of /network, /gfx, /rfx, /bpp stops FreeRDP 2.11 from its "auto-detect"
#                 defaults, which turn on the GFX pipeline and RemoteFX (lossy). With /bpp:32
#                 alone the client asks for neither GFX, RemoteFX nor NSCodec: plain bitmap
#                 updates, which is what our server sends and what lets us compare exactly.
#   /size         the source's size; the server's Demand Active decides the real window size.
#   -decorations  no title bar (there is no window manager on Xvfb anyway).
#   /cert:ignore  self-signed certificates; HOME/XDG_CONFIG_HOME in the temp dir keep
#                 FreeRDP's known_hosts and config out of the real home.
CLIENT_FLAGS=(/cert:ignore /bpp:32 "/size:${SRC_W}x${SRC_H}" -decorations)
# shellcheck disable=SC2206  # a list of words on purpose
CLIENT_FLAGS+=(${E2E_XFREERDP_ARGS:-})

# An array, not a function: `func &` would fork a subshell, and $! would not be timeout's pid.
# env execs timeout, so $! of `"${CLIENT_ENV[@]}" timeout ... &` is timeout, which passes TERM on.
CLIENT_ENV=(env HOME="$T/client-home" XDG_CONFIG_HOME="$T/client-home" DISPLAY="$CLI_DISPLAY")

auth_only() { # auth_only PASSWORD LOGNAME -> exit code of xfreerdp +auth-only /sec:nla
    local rc=0
    "${CLIENT_ENV[@]}" timeout 30 xfreerdp "/v:127.0.0.1:$PORT" "/u:$E2E_USER" "/p:$1" "${CLIENT_FLAGS[@]}" \
        /sec:nla +auth-only >"$T/$2.log" 2>&1 || rc=$?
    return "$rc"
}

SESSION_PID=""
SESSION_WIN=""
SESSION_LOG=""
GEOM=""

find_window() {
    SESSION_WIN="$(DISPLAY="$CLI_DISPLAY" xdotool search --onlyvisible --name '^FreeRDP' 2>/dev/null | head -n 1)"
    [ -n "$SESSION_WIN" ]
}
window_or_exit() { find_window || ! kill -0 "$SESSION_PID" 2>/dev/null; }

# open_session SEC NAME: start xfreerdp, wait for its window; sets GEOM=X,Y,W,H. 1 + REASON if not.
open_session() {
    local sec="$1" name="$2"
    SESSION_LOG="$T/$name.log"
    GEOM=""
    # Blank the client screen first, so that nothing a previous session left can pass for
    # this session's pixels (and an area the client never draws stays visibly wrong).
    DISPLAY="$CLI_DISPLAY" timeout 15 display -window root "$T/blank.png" >>"$T/paint.log" 2>&1 || true
    if ! "$PY" "$PIX" wait-match "$T/blank.png" "$CLI_FB" --timeout 5 >>"$T/paint.log" 2>&1; then
        "$PY" "$PIX" xwd2png "$CLI_FB" "$T/blank-failed-$name.png" 2>/dev/null || true
        REASON="could not blank the client screen (a window of a previous session still there?)"
        return 1
    fi
    "${CLIENT_ENV[@]}" timeout --kill-after=3 40 xfreerdp "/v:127.0.0.1:$PORT" "/u:$E2E_USER" "/p:$E2E_PASS" \
        "${CLIENT_FLAGS[@]}" "/sec:$sec" >"$SESSION_LOG" 2>&1 &
    SESSION_PID=$!
    PIDS+=("$SESSION_PID")
    if ! wait_for 20 window_or_exit || [ -z "$SESSION_WIN" ]; then
        local rc="still running"
        if ! kill -0 "$SESSION_PID" 2>/dev/null; then
            rc=0; wait "$SESSION_PID" 2>/dev/null || rc=$?
            rc="exit code $rc"
        fi
        REASON="no FreeRDP window within 20 s (xfreerdp $rc); last log: $(tail -n 1 "$SESSION_LOG" | cut -c1-200)"
        return 1
    fi
    local X="" Y="" WIDTH="" HEIGHT=""
    eval "$(DISPLAY="$CLI_DISPLAY" xdotool getwindowgeometry --shell "$SESSION_WIN" | grep -E '^(X|Y|WIDTH|HEIGHT)=[0-9]+$')"
    GEOM="$X,$Y,$WIDTH,$HEIGHT"
    if [ -z "$X" ] || [ -z "$Y" ]; then
        REASON="xdotool gave no geometry for window $SESSION_WIN"
        return 1
    fi
    if [ "$WIDTH" != "$SRC_W" ] || [ "$HEIGHT" != "$SRC_H" ]; then
        REASON="client window is ${WIDTH}x${HEIGHT}, source is ${SRC_W}x${SRC_H}"
        return 1
    fi
}

close_session() {
    [ -n "$SESSION_PID" ] && stop_pid "$SESSION_PID"
    SESSION_PID=""
    # The window must be gone before the next session looks for its own (open_session's
    # blank-screen check catches one that stays).
    if ! wait_for 5 bash -c "! DISPLAY='$CLI_DISPLAY' xdotool search --onlyvisible --name '^FreeRDP' >/dev/null 2>&1"; then
        log "warning: a FreeRDP window is still open after its client was stopped"
    fi
}

shows() { # shows PNG TAG [TIMEOUT]: the client window shows PNG; REASON has the numbers either way
    local out rc=0
    out="$("$PY" "$PIX" wait-match "$1" "$CLI_FB" --crop "$GEOM" --timeout "${3:-15}" \
        --diff "$T/diff-$2.png" 2>&1)" || rc=$?
    REASON="$out"
    return "$rc"
}

# --------------------------------------------------------------------------- cases

result() { # result NAME: PASS/FAIL from the status of the last case function, with $REASON
    local status="$1" name="$2"
    if [ "$status" -eq 0 ]; then
        PASSED=$((PASSED + 1)); echo "PASS $name: $REASON"
    else
        FAILED=$((FAILED + 1)); echo "FAIL $name: $REASON"
    fi
}
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP $1: $2"; }
run_case() { # run_case NAME FUNCTION (case letter = FUNCTION's last character)
    local st=0
    case "$SKIP_CASES" in *"${2: -1}"*) skip "$1" "in E2E_SKIP"; return 0 ;; esac
    REASON=""
    "$2" || st=$?
    result "$st" "$1"
}

case_a() { # NLA with the right password shows the source's pixels
    open_session nla nla-session || return 1
    shows "$T/pic1.png" a || return 1
    REASON="window $GEOM; $REASON"
}

case_d() { # the client follows picture changes (same session as (a))
    if [ -z "$SESSION_PID" ] || ! kill -0 "$SESSION_PID" 2>/dev/null || [ -z "$GEOM" ]; then
        # (a) was skipped or its client died: a session of our own.
        close_session
        open_session nla nla-session-d || return 1
        shows "$T/pic1.png" d0 || { REASON="first picture: $REASON"; return 1; }
    fi
    # Negative control: before the change, the window must not already match the second picture.
    if "$PY" "$PIX" compare "$T/pic2.png" "$CLI_FB" --crop "$GEOM" >/dev/null 2>&1; then
        REASON="harness error: the window matches the second picture before it was painted"
        return 1
    fi
    paint "$T/pic2.png" || return 1
    shows "$T/pic2.png" d2 || { REASON="second picture: $REASON"; return 1; }
    local r2="$REASON"
    paint "$T/pic1.png" || return 1
    shows "$T/pic1.png" d1 || { REASON="back to the first picture: $REASON"; return 1; }
    REASON="second picture: $r2; back to the first: $REASON"
}

case_f() { # scrolling: the client follows exactly; thinshadow sends the moved rows as copies
    if [ -z "$SESSION_PID" ] || ! kill -0 "$SESSION_PID" 2>/dev/null || [ -z "$GEOM" ]; then
        close_session
        open_session nla nla-session-f || return 1
    fi
    paint "$T/pic1.png" || return 1
    shows "$T/pic1.png" f0 || { REASON="start picture: $REASON"; return 1; }
    # A text view scrolling up by 8, 8, 8, 40 rows, down by 24, then sideways by 40 and 40 and
    # diagonally (what it uncovers comes from picture 2), and a second region with its own
    # shift, each step checked pixel for pixel.
    local prev="$T/pic1.png" step=0 move dx dy details=""
    for move in 0,8 0,8 0,8 0,40 0,-24 40,0 -40,0 24,-16; do
        step=$((step + 1))
        dx=${move%,*} dy=${move#*,}
        "$PY" "$PIX" scroll "$prev" "$T/scroll-$step.png" --fill "$T/pic2.png" \
            --region 64,200,832,512 --dx "$dx" --dy "$dy" || { REASON="scroll picture $step failed"; return 1; }
        if [ "$step" = 4 ]; then
            "$PY" "$PIX" scroll "$T/scroll-$step.png" "$T/scroll-$step.png" --fill "$T/pic2.png" \
                --region 896,100,128,600 --dy 3 || { REASON="scroll picture $step failed"; return 1; }
        fi
        paint "$T/scroll-$step.png" || return 1
        shows "$T/scroll-$step.png" "f$step" || { REASON="scroll step $step (dx,dy $move): $REASON"; return 1; }
        details="$details $move"
        prev="$T/scroll-$step.png"
    done
    # The later cases expect the first picture.
    paint "$T/pic1.png" || return 1
    REASON="$step scroll steps (dx,dy:$details), each pixel-exact"
}

case_b() { # wrong password: auth failure exit code; right password still accepted
    local rc_ok=0 rc_bad=0 rc_again=0
    auth_only "$E2E_PASS" auth-ok || rc_ok=$?
    auth_only "$WRONG_PASS" auth-bad || rc_bad=$?
    auth_only "$E2E_PASS" auth-ok2 || rc_again=$?
    # thinshadow answers a wrong password with STATUS_LOGON_FAILURE in the CredSSP reply, which
    # FreeRDP reports as XF_EXIT_LOGON_FAILURE (134); FreeRDP's shadow server just drops the
    # connection, which the client reports as a transport failure (147).
    local want_bad=134
    [ "$SERVER" = freerdp-shadow ] && want_bad=147
    REASON="+auth-only /sec:nla exit codes: right $rc_ok (want 0), wrong $rc_bad (want $want_bad), right again $rc_again (want 0)"
    [ "$rc_ok" -eq 0 ] && [ "$rc_bad" -eq "$want_bad" ] && [ "$rc_again" -eq 0 ] || return 1
    server_up || { REASON="server died; $REASON"; return 1; }
}

case_c() { # TLS with the right password shows the pixels
    open_session tls tls-session || return 1
    shows "$T/pic1.png" c || return 1
    REASON="window $GEOM; $REASON"
}

case_e() { # TLS with a wrong password: refused, no picture
    local rc=0
    "${CLIENT_ENV[@]}" timeout 30 xfreerdp "/v:127.0.0.1:$PORT" "/u:$E2E_USER" "/p:$WRONG_PASS" \
        "${CLIENT_FLAGS[@]}" /sec:tls >"$T/tls-wrong.log" 2>&1 || rc=$?
    REASON="xfreerdp /sec:tls with a wrong password exited $rc"
    case "$rc" in
        0) REASON="$REASON (want non-zero: the session was accepted)"; return 1 ;;
        124|137) REASON="$REASON (timed out: the server neither accepted nor refused)"; return 1 ;;
    esac
    server_up || { REASON="server died; $REASON"; return 1; }
}

case_m() { # a client with a Revision 2 bitmap cache: pictures shown again come from it
    close_session
    local ended_before
    ended_before="$(grep -c "session ended after" "$T/server.log" || true)"
    local plain=("${CLIENT_FLAGS[@]}")
    CLIENT_FLAGS+=(+bitmap-cache)
    open_session nla nla-session-m || { CLIENT_FLAGS=("${plain[@]}"); return 1; }
    CLIENT_FLAGS=("${plain[@]}")
    local steps=""
    for pic in pic1 pic2 pic1 pic2 pic1; do
        paint "$T/$pic.png" || return 1
        shows "$T/$pic.png" "m-$pic" || { REASON="$pic after$steps: $REASON"; return 1; }
        steps="$steps $pic"
    done
    close_session
    wait_for 5 bash -c "[ \"\$(grep -c 'session ended after' '$T/server.log')\" -gt $ended_before ]" || true
    local ended hits
    ended="$(grep "session ended after" "$T/server.log" | tail -n 1)"
    hits="$(sed -n 's/.* \([0-9][0-9]*\) tiles from the bitmap cache.*/\1/p' <<<"$ended")"
    REASON="pixel-exact after$steps; server: ${ended#*; }"
    [ "${hits:-0}" -gt 0 ] || { REASON="no tile came from the cache; $REASON"; return 1; }
}

run_case "(a) NLA, right password: client shows the source" case_a
run_case "(d) source changes: client follows" case_d
run_case "(f) scrolling: client follows exactly" case_f
close_session
if [ "$SERVER" = thinshadow ] && [[ $SKIP_CASES != *f* ]]; then
    # The copies themselves: the session's end line counts them (it comes once the client left).
    wait_for 5 grep -q "session ended after" "$T/server.log" || true
    ended="$(grep "session ended after" "$T/server.log" | tail -n 1)"
    copies="$(sed -n 's/.* \([0-9][0-9]*\) copies.*/\1/p' <<<"$ended")"
    sideways="$(sed -n 's/.*(\([0-9][0-9]*\) sideways).*/\1/p' <<<"$ended")"
    REASON="server: ${ended#*; }"
    if [ "${copies:-0}" -gt 0 ] && [ "${sideways:-0}" -gt 0 ]; then
        result 0 "(g) scrolled and moved rows went as ScrBlt copies"
    else
        result 1 "(g) scrolled and moved rows went as ScrBlt copies"
    fi
fi
run_case "(b) NLA, wrong password: auth failure" case_b
run_case "(c) TLS, right password: client shows the source" case_c
close_session
if [ "$SERVER" = thinshadow ]; then
    run_case "(m) +bitmap-cache: pictures shown again come from the client's cache, pixel-exact" case_m
else
    skip "(m) +bitmap-cache" "$SERVER sends no Cache Bitmap orders"
fi
if [ "$TLS_CHECKS_PASSWORD" = 1 ]; then
    run_case "(e) TLS, wrong password: refused" case_e
else
    skip "(e) TLS, wrong password: refused" "$SERVER checks no password over TLS (run with -auth)"
fi

if [ "$SERVER" = thinshadow ]; then
    # shellcheck source=SCRIPTDIR/e2e/policy-cases.sh
    . "$HERE/e2e/policy-cases.sh"
fi

if [ "$FAILED" -gt 0 ]; then
    echo "--- server log (last 15 lines)" >&2
    tail -n 15 "$T/server.log" >&2 || true
fi
summary
[ "$FAILED" -eq 0 ]
