# Shared by the test and bench scripts (sourced, not run): processes, polling, counted
# checks, Xvfb. `start` and `start_xvfb` need T (a temp dir), PIDS (an array) and DEADLINE
# (seconds any process they start may live) set first.

# stop_pid PID: TERM, a bounded wait (3 s), then KILL; reaps it if it is our child.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds; false at the deadline.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

# pass NAME WHAT / fail NAME WHAT: one counted check line (PASSED, FAILED).
pass() { PASSED=$((PASSED + 1)); echo "PASS $1: $2"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }

has_line() { [ -s "$1" ] && grep -q . "$1"; }
port_listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# child_of PID: the process `timeout` started (timeout -> [env ->] server: env execs), else PID.
child_of() {
    local c
    c="$(ps -o pid= --ppid "$1" 2>/dev/null | head -n 1 | tr -d ' ')"
    echo "${c:-$1}"
}

# start NAME LIMIT CMD...: CMD in the background under `timeout LIMIT`, its output in
# $T/NAME.log; its pid in LAST_PID (and PIDS, for the cleanup).
start() {
    local name="$1" limit="$2"
    shift 2
    timeout --kill-after=3 "$limit" "$@" >"$T/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# start_xvfb NAME WxH: an Xvfb whose screen is a file; sets XVFB_DISPLAY, XVFB_FB, XVFB_PID.
start_xvfb() {
    local name="$1" size="$2" dir="$T/$1-fb"
    mkdir -p "$dir"
    : >"$T/$name.dpy"
    # -displayfd: Xvfb picks a free display itself and writes its number.
    timeout --kill-after=3 $((DEADLINE + 10)) Xvfb -displayfd 3 -screen 0 "${size}x24" -fbdir "$dir" \
        -nocursor -noreset -nolisten tcp 3>"$T/$name.dpy" >"$T/$name-xvfb.log" 2>&1 &
    PIDS+=("$!")
    XVFB_PID="$!"
    if ! wait_for 15 has_line "$T/$name.dpy"; then
        echo "Xvfb ($name) did not start:" >&2
        tail -n 20 "$T/$name-xvfb.log" >&2
        exit 2
    fi
    XVFB_DISPLAY=":$(head -n 1 "$T/$name.dpy" | tr -dc 0-9)"
    XVFB_FB="$dir/Xvfb_screen0"
    wait_for 5 test -s "$XVFB_FB" || { echo "no $XVFB_FB" >&2; exit 2; }
    XVFB_PID="$(child_of "$XVFB_PID")"
}
