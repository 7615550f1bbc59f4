# shellcheck shell=bash
# Board library for scripts and tests: source it, then
#
#   board_boot [run.sh options]     boot in the background (serial on a unix socket, logged), wait for
#                                   init's "ready" and an answer from the serial shell; sets BOARD_DIR,
#                                   BOARD_PID, BOARD_PORT, BOARD_LOG
#   board_cmd [-t SECS] CMD...      run CMD in the guest's serial shell; prints its output (stdout and
#                                   stderr), returns its exit status (124 on timeout, default 60 s). One line,
#                                   under ~900 characters (busybox line editing caps a line at 1024).
#   board_send TEXT                 write TEXT as is to the serial console (printf '\003' for Ctrl+C)
#   board_wait_log ERE SECS         wait for a serial line matching ERE; prints the last such line.
#                                   Output of guest programs may follow the shell's prompt on the same
#                                   line ("/ # ESC[6nTHINSHADOW-CREDS {...}"): do not anchor it with ^.
#   board_qmp JSON                  one QMP command; prints its "return"
#   board_screendump FILE.png       QMP screendump, PNG
#   board_poweroff                  Ctrl+C, `poweroff` (the agent gets SIGTERM), QMP quit after
#                                   BOARD_POWEROFF_TIMEOUT s, kill last; waits for QEMU to be gone.
#                                   Safe to call twice: put it in an EXIT trap.
#
# Environment: BOARD_TIMEOUT (QEMU's hard limit, default 600 s), BOARD_BOOT_TIMEOUT (90 s),
# BOARD_POWEROFF_TIMEOUT (15 s), BOARD_KEEP=1 keeps BOARD_DIR. Uses python3 (stdlib) for QMP/serial.

BOARD_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BOARD_DIR=
BOARD_PID=
BOARD_PORT=
BOARD_LOG=
_BOARD_SEQ=0
_BOARD_STARTING=

_board_log() { echo "board: $*" >&2; }

_board_ctl() { python3 "$BOARD_HERE/boardctl.py" "$@"; }

board_boot() {
    BOARD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/thinshadow-board.XXXXXX")
    BOARD_LOG=$BOARD_DIR/serial.log
    : >"$BOARD_LOG"
    _BOARD_T0=$(date +%s.%N)
    # A signal trap may run between the launch and the assignment: board_poweroff then uses $!.
    _BOARD_STARTING=1
    "$BOARD_HERE/run.sh" --serial unix --workdir "$BOARD_DIR" --timeout "${BOARD_TIMEOUT:-600}" "$@" \
        >"$BOARD_DIR/run.out" 2>&1 &
    BOARD_PID=$!
    _BOARD_STARTING=
    local deadline=$((SECONDS + ${BOARD_BOOT_TIMEOUT:-90}))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$BOARD_PID" 2>/dev/null; then
            _board_log "QEMU exited during boot:"
            cat "$BOARD_DIR/run.out" >&2
            tail -n 20 "$BOARD_LOG" >&2
            BOARD_PID=
            return 1
        fi
        if [[ -z $BOARD_PORT && -s $BOARD_DIR/port ]]; then
            BOARD_PORT=$(cat "$BOARD_DIR/port")
        fi
        if tr -d '\r' <"$BOARD_LOG" | grep -q '^thinshadow-board: ready$'; then
            BOARD_PORT=$(cat "$BOARD_DIR/port")
            _board_shell_answers "$deadline" || return 1
            BOARD_BOOT_SECONDS=$(awk -v a="$_BOARD_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
            _board_log "up in ${BOARD_BOOT_SECONDS} s (workdir $BOARD_DIR, RDP at 127.0.0.1:$BOARD_PORT)"
            return 0
        fi
        sleep 0.2
    done
    _board_log "no 'ready' from the guest within ${BOARD_BOOT_TIMEOUT:-90} s; serial log:"
    tail -n 30 "$BOARD_LOG" >&2
    return 1
}

# "ready" comes before busybox init starts the serial shell, and a loaded host can stall the guest
# for tens of seconds (a kernel "rcu_sched self-detected stall" on the console; typed characters
# may be lost meanwhile). Ask the shell a trivial question until it answers or $1 (SECONDS) passes.
_board_shell_answers() {
    local deadline=$1 out
    while ((SECONDS < deadline)); do
        if out=$(board_cmd -t 10 echo shell-ok 2>/dev/null) && [[ $out == shell-ok ]]; then
            return 0
        fi
        kill -0 "$BOARD_PID" 2>/dev/null || break
        _board_log "the serial shell did not answer yet; asking again"
    done
    _board_log "the serial shell never answered; serial log:"
    tail -n 30 "$BOARD_LOG" >&2
    return 1
}

board_send() {
    printf '%s' "$1" | _board_ctl send "$BOARD_DIR/serial.sock" -
}

# Serial log from byte offset $1, CRs removed.
_board_log_from() { tail -c +"$(($1 + 1))" "$BOARD_LOG" | tr -d '\r'; }

board_wait_log() {
    local ere=$1 tmo=$2 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        if tr -d '\r' <"$BOARD_LOG" | grep -E -- "$ere" | tail -n 1 | grep .; then
            return 0
        fi
        kill -0 "$BOARD_PID" 2>/dev/null || return 1
        sleep 0.3
    done
    return 124
}

board_cmd() {
    local tmo=60
    if [[ ${1:-} == -t ]]; then
        tmo=$2
        shift 2
    fi
    local cmd=$* id off deadline rc
    _BOARD_SEQ=$((_BOARD_SEQ + 1))
    id=$$x${_BOARD_SEQ}x$RANDOM
    off=$(stat -c %s "$BOARD_LOG")
    # Markers are assembled in the guest so the echoed command line never contains them.
    board_send "_p=@O;_e=@E; ( $cmd ) >/tmp/.bc$id 2>&1; _r=\$?; sed \"s/^/\${_p}$id@ /\" /tmp/.bc$id; echo \"\${_e}$id@ \$_r\"; rm -f /tmp/.bc$id
"
    deadline=$((SECONDS + tmo))
    while ((SECONDS < deadline)); do
        rc=$(_board_log_from "$off" | sed -n "s/^@E$id@ \([0-9][0-9]*\)\$/\1/p" | head -n 1)
        if [[ -n $rc ]]; then
            _board_log_from "$off" | sed -n "s/^@O$id@ //p"
            return "$rc"
        fi
        kill -0 "$BOARD_PID" 2>/dev/null || { _board_log "QEMU is gone"; return 125; }
        sleep 0.2
    done
    _board_log "guest command timed out after ${tmo} s: $cmd"
    board_send $'\003'
    return 124
}

board_qmp() {
    _board_ctl qmp "$BOARD_DIR/qmp.sock" "$1"
}

board_screendump() {
    local f
    f=$(realpath -m "$1")
    board_qmp "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"$f\",\"format\":\"png\"}}" >/dev/null
}

board_poweroff() {
    local pid=$BOARD_PID deadline
    if [[ -z $pid && -n ${_BOARD_STARTING:-} ]]; then
        pid=$!
    fi
    [[ -n $pid ]] || return 0
    BOARD_PID=
    _BOARD_STARTING=
    if kill -0 "$pid" 2>/dev/null; then
        # Ctrl+C ends whatever runs on the serial shell (the shell may be respawned), then poweroff.
        board_send $'\003' 2>/dev/null || true
        sleep 0.5
        board_send $'\npoweroff\n' 2>/dev/null || true
        deadline=$((SECONDS + ${BOARD_POWEROFF_TIMEOUT:-15}))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    fi
    if kill -0 "$pid" 2>/dev/null; then
        _board_log "guest did not power off; QMP quit"
        _board_ctl qmp "$BOARD_DIR/qmp.sock" '{"execute":"quit"}' 5 >/dev/null 2>&1 || true
        deadline=$((SECONDS + 5))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    fi
    if kill -0 "$pid" 2>/dev/null; then
        _board_log "QEMU still running; killing it"
        kill -TERM "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    if tr -d '\r' <"$BOARD_LOG" 2>/dev/null | grep -q 'reboot: Power down'; then
        _board_log "guest powered off"
    fi
    if [[ ${BOARD_KEEP:-0} != 1 && -n $BOARD_DIR ]]; then
        rm -rf "$BOARD_DIR"
    fi
}
