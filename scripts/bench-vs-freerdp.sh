#!/usr/bin/env bash
# Side-by-side measurement of thinshadow and FreeRDP's shadow server (issue 7). Measures only.
#
# One "source" Xvfb with -fbdir plays a bounded workload (scripts/bench/bench.py workload: a
# frame-code strip with a clock, a 25 fps animation, scrolling text, a moving window, a background
# flip every 5 s). Each server in turn serves that screen: thinshadow from the -fbdir XWD file
# (`serve --screen xwd:`), freerdp-shadow-cli from the X display. The same xfreerdp client with
# the same settings connects through a loopback relay that counts bytes, under its own Xvfb with
# -fbdir, from which the frame codes are read back.
#
# Usage: scripts/bench-vs-freerdp.sh [--size WxH] [--seconds S] [--client-args "WORDS"]
#                                    [--servers "thinshadow freerdp-shadow"] [--bin PATH]
#                                    [--idle-seconds S] [--runs N] [--keep DIR]
#                                    [--serve-args "WORDS"]
#   --size          source screen (default 1280x800, at least 1024x700)
#   --seconds       workload length (default 20)
#   --client-args   xfreerdp words replacing the codec settings (default "/bpp:32 -gfx":
#                   plain bitmap updates), e.g. "/bpp:32 /rfx" or "/gfx:avc420"
#   --bin           thinshadow binary (default target/release/thinshadow; built with
#                   `cargo build --release` when missing: a debug build is not representative)
#   --idle-seconds  the no-client check (default 10)
#   --serve-args    extra words for `thinshadow serve`, e.g. "--frame-interval 50"
#   --runs          measure each server N times in turn (default 1, at most 10): the table then
#                   shows the mean ± spread (half the range) of each figure, ratios of the means
#   --keep DIR      copy logs and per-frame files there
#   --static        no workload: the first frame stays on screen for --seconds (what a watched
#                   screen that does not change costs)
#
# Figures, and how they are taken:
#   server CPU s     utime+stime of the server's process tree from /proc/PID/stat, read just before
#                    the workload starts and 1 s after it ends (the client is already connected).
#   peak RSS         VmHWM (summed over the tree) at the end; peak RssAnon: /proc/PID/status
#                    sampled every 100 ms from before the client connects to the end.
#   bytes            counted by the relay (bench.py relay) between client and server, during the
#                    workload window (same marks as CPU) and for the whole session.
#   frames shown     distinct frame codes (16 bits + complement, 16x24 px black/white blocks at
#                    the top left) read back from the client's -fbdir screen every 2 ms.
#   latency          for each code: (first time the reader saw it on the client's screen) minus
#                    (time the workload's X request for that frame had completed, i.e. after a
#                    GetInputFocus round trip, so the pixels were in the source framebuffer).
#                    Both CLOCK_MONOTONIC. Resolution: the 2 ms poll. Codes never seen (the
#                    server skipped them) do not count in the latency, only in "frames shown".
#   idle check       the server with no client for --idle-seconds: voluntary and nonvoluntary
#                    context switches over all its threads, before and after (target 0 for
#                    thinshadow).
#   harness CPU      the workload, readback, relay and sampler report their own CPU; the source
#                    Xvfb's CPU is shown too. Everything runs on the same machine as the servers.
# Everything is loopback, every process runs under `timeout` and is stopped at exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PY=/usr/bin/python3
B="$HERE/bench/bench.py"
PIX="$HERE/e2e/pixels.py"

SIZE=1280x800
SECONDS_WL=20
STATIC=0
CLIENT_ARGS="/bpp:32 -gfx"
SERVERS="thinshadow freerdp-shadow"
BIN="target/release/thinshadow"
IDLE=10
KEEP=""
RUNS=1
SERVE_ARGS=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --size) SIZE="$2"; shift 2 ;;
        --seconds) SECONDS_WL="$2"; shift 2 ;;
        --static) STATIC=1; shift ;;
        --client-args) CLIENT_ARGS="$2"; shift 2 ;;
        --servers) SERVERS="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        --idle-seconds) IDLE="$2"; shift 2 ;;
        --keep) KEEP="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --serve-args) SERVE_ARGS="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$SIZE" =~ ^[0-9]+x[0-9]+$ ]] || { echo "--size WxH" >&2; exit 2; }
[[ "$SECONDS_WL" =~ ^[0-9]+$ ]] && [ "$SECONDS_WL" -ge 2 ] && [ "$SECONDS_WL" -le 300 ] \
    || { echo "--seconds: 2..300" >&2; exit 2; }
[[ "$IDLE" =~ ^[0-9]+$ ]] && [ "$IDLE" -le 300 ] || { echo "--idle-seconds: 0..300" >&2; exit 2; }
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 10 ] || { echo "--runs: 1..10" >&2; exit 2; }
SRC_W="${SIZE%x*}"; SRC_H="${SIZE#*x}"
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac

for tool in Xvfb xfreerdp xdotool ss timeout; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
"$PY" -c 'import PIL' 2>/dev/null || { echo "$PY lacks PIL (apt-get install python3-pil)" >&2; exit 2; }
case " $SERVERS " in *" freerdp-shadow "*)
    command -v freerdp-shadow-cli >/dev/null || { echo "missing freerdp-shadow-cli (freerdp2-shadow-x11)" >&2; exit 2; } ;;
esac
case " $SERVERS " in *" thinshadow "*)
    if [ ! -x "$BIN" ]; then
        [ "$BIN" = "$REPO/target/release/thinshadow" ] || { echo "no thinshadow at $BIN" >&2; exit 2; }
        echo "building thinshadow (cargo build --release; takes minutes)" >&2
        (cd "$REPO" && timeout 1800 cargo build --release) >&2
    fi ;;
esac

# --------------------------------------------------------------------------- lifecycle

T="$(mktemp -d /tmp/thinshadow-bench.XXXXXX)"
PIDS=()
WATCHDOG=""
DEADLINE=$((RUNS * (4 * SECONDS_WL + 120) + 2 * IDLE + 120))
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck source=SCRIPTDIR/lib/procs.sh
. "$HERE/lib/procs.sh"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$WATCHDOG" ] && { kill "$WATCHDOG" 2>/dev/null || true; wait "$WATCHDOG" 2>/dev/null || true; }
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
    if [ -n "$KEEP" ]; then
        mkdir -p "$KEEP"
        find "$T" -maxdepth 1 -type f \( -name '*.log' -o -name '*.tsv' -o -name '*.json' \
            -o -name '*.txt' -o -name '*.png' \) -exec cp {} "$KEEP"/ \; 2>/dev/null || true
        echo "files kept in $KEEP" >&2
    fi
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated (whole-run deadline ${DEADLINE}s)"; exit 124' TERM
MAIN_PID=$$
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$DEADLINE" &
    sp=$!
    wait "$sp" && kill -TERM "$MAIN_PID" 2>/dev/null
) >/dev/null 2>&1 &
WATCHDOG=$!

NPROC="$(nproc)"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
log "temp dir $T; $NPROC cores, load average $LOAD0"

start_xvfb src "$SIZE"
SRC_DISPLAY="$XVFB_DISPLAY"; SRC_FB="$XVFB_FB"; SRC_XVFB_PID="$XVFB_PID"
CLI_SIZE="$((SRC_W + 64))x$((SRC_H + 64))"
start_xvfb cli "$CLI_SIZE"
CLI_DISPLAY="$XVFB_DISPLAY"; CLI_FB="$XVFB_FB"
log "source $SRC_DISPLAY ($SIZE), client $CLI_DISPLAY"
"$PY" "$B" workload "$SRC_DISPLAY" --size "$SIZE" --init

# --------------------------------------------------------------------------- one server

SERVER_PID=""
USER_NAME=""
PASS=""
start_server() { # NAME PORT
    local name="$1" port="$2"
    mkdir -p "$T/$name-home"
    if [ "$name" = thinshadow ]; then
        mkdir -p "$T/$name-state"
        # shellcheck disable=SC2086  # words on purpose
        start "$name-server" $((DEADLINE + 10)) "$BIN" serve --listen "127.0.0.1:$port" \
            --screen "xwd:$SRC_FB" --state-dir "$T/$name-state" \
            --control "$T/$name-state/control.sock" --consent-timeout-auto 0 --local-prompt off \
            $SERVE_ARGS
    else
        USER_NAME=bench
        PASS="bench-$("$PY" -c 'import secrets; print(secrets.token_hex(8))')"
        "$PY" "$PIX" sam-line "$USER_NAME" "$PASS" >"$T/sam"
        chmod 600 "$T/sam"
        # TLS security only, no PAM check (-auth): the same /sec:tls client as for thinshadow.
        start "$name-server" $((DEADLINE + 10)) env HOME="$T/$name-home" XDG_CONFIG_HOME="$T/$name-home" \
            DISPLAY="$SRC_DISPLAY" freerdp-shadow-cli "/port:$port" /bind-address:127.0.0.1 \
            -sec-rdp -sec-nla +sec-tls -auth "/sam-file:$T/sam"
    fi
    local wrapper="$LAST_PID"
    up_or_dead() { port_listening "$port" || ! kill -0 "$wrapper" 2>/dev/null; }
    if ! wait_for 30 up_or_dead || ! kill -0 "$wrapper" 2>/dev/null; then
        echo "$name did not come up:" >&2; tail -n 20 "$T/$name-server.log" >&2; return 1
    fi
    SERVER_PID="$(child_of "$wrapper")"
    if [ "$name" = thinshadow ]; then
        timeout 15 "$BIN" creds --state-dir "$T/$name-state" --json >"$T/creds.json"
        USER_NAME="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["user"])' "$T/creds.json")"
        PASS="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])' "$T/creds.json")"
        rm -f "$T/creds.json"
    fi
    SERVER_WRAPPER="$wrapper"
}

idle_check() { # NAME: no client for IDLE seconds; sets IDLE_RESULT
    local name="$1" port a b
    IDLE_RESULT="could not start"
    port="$("$PY" "$PIX" freeport)"
    start_server "$name" "$port" || return 0
    sleep 2
    a="$("$PY" "$B" ctxsw "$SERVER_PID")"
    sleep "$IDLE"
    b="$("$PY" "$B" ctxsw "$SERVER_PID")"
    stop_pid "$SERVER_WRAPPER"
    IDLE_RESULT="voluntary_ctxt_switches +$(( ${b% *} - ${a% *} )), nonvoluntary +$(( ${b#* } - ${a#* } ))"
}

run_one() { # NAME -> $T/NAME.json
    local name="$1" port rport
    port="$("$PY" "$PIX" freeport)"
    start_server "$name" "$port" || return 1
    log "$name: pid $SERVER_PID on 127.0.0.1:$port"
    rport="$("$PY" "$PIX" freeport)"
    : >"$T/$name-relay.txt"
    start "$name-relay" $((SECONDS_WL + 120)) "$PY" "$B" relay --listen-port "$rport" --target-port "$port" \
        --seconds $((SECONDS_WL + 110)) --out "$T/$name-relay.txt"
    local relay="$LAST_PID"
    wait_for 10 port_listening "$rport" || { echo "relay did not listen" >&2; return 1; }
    relay="$(child_of "$relay")"
    start "$name-watch" $((SECONDS_WL + 120)) "$PY" "$B" watch "$SERVER_PID" --seconds $((SECONDS_WL + 110)) \
        --out "$T/$name-mem.json"
    local watch="$LAST_PID"
    # shellcheck disable=SC2206  # words on purpose
    local cargs=($CLIENT_ARGS)
    start "$name-client" $((SECONDS_WL + 90)) env HOME="$T/$name-home" XDG_CONFIG_HOME="$T/$name-home" \
        DISPLAY="$CLI_DISPLAY" xfreerdp "/v:127.0.0.1:$rport" "/u:$USER_NAME" "/p:$PASS" /cert:ignore \
        /sec:tls "/size:$SIZE" -decorations "${cargs[@]}"
    local client="$LAST_PID" client_wrapper="$LAST_PID" win=""
    find_win() {
        win="$(DISPLAY="$CLI_DISPLAY" xdotool search --onlyvisible --name '^FreeRDP' 2>/dev/null | head -n 1)"
        [ -n "$win" ] || ! kill -0 "$client" 2>/dev/null
    }
    if ! wait_for 30 find_win || [ -z "$win" ]; then
        echo "$name: no client window; client log:" >&2; tail -n 15 "$T/$name-client.log" >&2; return 1
    fi
    local X="" Y="" WIDTH="" HEIGHT=""
    eval "$(DISPLAY="$CLI_DISPLAY" xdotool getwindowgeometry --shell "$win" | grep -E '^(X|Y|WIDTH|HEIGHT)=[0-9]+$')"
    log "$name: client window ${WIDTH}x${HEIGHT}+$X+$Y"
    client="$(child_of "$client")"
    sleep 3  # let the first full screen settle
    start "$name-readback" $((SECONDS_WL + 30)) "$PY" "$B" readback "$CLI_FB" --origin "$X,$Y" \
        --seconds $((SECONDS_WL + 5)) --out "$T/$name-seen.tsv"
    local rb="$LAST_PID"
    local cpu0 ccpu0 xcpu0
    cpu0="$("$PY" "$B" cpu "$SERVER_PID")"
    ccpu0="$("$PY" "$B" cpu "$client")"
    xcpu0="$("$PY" "$B" cpu "$SRC_XVFB_PID")"
    kill -USR1 "$relay"
    log "$name: workload ${SECONDS_WL}s"
    if [ "$STATIC" = 1 ]; then
        : >"$T/$name-codes.tsv"
        sleep "$SECONDS_WL"
    else
        timeout $((SECONDS_WL + 30)) "$PY" "$B" workload "$SRC_DISPLAY" --size "$SIZE" --seconds "$SECONDS_WL" \
            --log "$T/$name-codes.tsv"
    fi
    sleep 1
    local cpu1 ccpu1 xcpu1
    cpu1="$("$PY" "$B" cpu "$SERVER_PID")"
    ccpu1="$("$PY" "$B" cpu "$client")"
    xcpu1="$("$PY" "$B" cpu "$SRC_XVFB_PID")"
    kill -USR1 "$relay"
    sleep 0.3
    stop_pid "$rb"
    stop_pid "$watch"
    stop_pid "$client_wrapper"
    stop_pid "$relay"
    stop_pid "$SERVER_WRAPPER"
    "$PY" "$B" analyze --name "$name" --codes "$T/$name-codes.tsv" --seen "$T/$name-seen.tsv" \
        --relay "$T/$name-relay.txt" --mem "$T/$name-mem.json" --cpu-start "$cpu0" --cpu-end "$cpu1" \
        --client-cpu "$(awk -v a="$ccpu0" -v b="$ccpu1" 'BEGIN{print b-a}')" \
        --xvfb-cpu "$(awk -v a="$xcpu0" -v b="$xcpu1" 'BEGIN{print b-a}')" >"$T/$name.json"
    "$PY" "$B" workload "$SRC_DISPLAY" --size "$SIZE" --init  # same start for the next server
    # the client window must be gone before the next one is looked for
    wait_for 5 bash -c "! DISPLAY='$CLI_DISPLAY' xdotool search --onlyvisible --name '^FreeRDP' >/dev/null 2>&1" || true
}

RESULTS=()
MISSING=()
for s in $SERVERS; do
    case "$s" in thinshadow|freerdp-shadow) ;; *) echo "unknown server $s" >&2; exit 2 ;; esac
done
for ((k = 1; k <= RUNS; k++)); do
    for s in $SERVERS; do
        [ "$RUNS" -gt 1 ] && log "run $k of $RUNS"
        if run_one "$s"; then
            mv "$T/$s.json" "$T/$s-run$k.json"
            RESULTS+=("$T/$s-run$k.json")
        else
            MISSING+=("$s (run $k)")
        fi
    done
done
IDLE_LINES=()
if [ "$IDLE" -gt 0 ]; then
    for s in $SERVERS; do
        log "$s: idle check ${IDLE}s"
        idle_check "$s"
        IDLE_LINES+=("$s: $IDLE_RESULT")
    done
fi

LOAD1="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "thinshadow vs freerdp-shadow-cli: $SIZE source, ${SECONDS_WL}s workload at 25 fps, client: xfreerdp /sec:tls $CLIENT_ARGS"
echo "thinshadow: $BIN ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))${SERVE_ARGS:+ serve $SERVE_ARGS}"
echo "machine: $NPROC cores, load average $LOAD0 at start, $LOAD1 at end (other work may share it: figures are noisy)"
if [ "${#RESULTS[@]}" -gt 0 ]; then
    "$PY" "$B" report "${RESULTS[@]}"
fi
for l in "${IDLE_LINES[@]}"; do echo "idle, no client, ${IDLE}s: $l"; done
cat <<'NOTE'
notes: CPU and bytes are taken between two marks: just before the workload and 1 s after it (the
  client already connected; "whole session" bytes include the handshake). freerdp-shadow-cli grabs
  the screen through the X server (XShm/XDamage), so part of its capture cost is in "source Xvfb
  CPU s"; thinshadow reads the -fbdir file itself. Latency = first time the client's -fbdir screen
  shows a frame code (2 ms poll) - time that frame was complete in the source framebuffer; skipped
  codes count only in "frames shown". Harness, both Xvfb and the client run on the same cores.
NOTE
[ "${#MISSING[@]}" -eq 0 ] || { echo "FAILED to measure: ${MISSING[*]}"; exit 1; }
