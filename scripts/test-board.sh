#!/usr/bin/env bash
# Board test: the real agent on the QEMU aarch64 board, driven by the real FreeRDP client.
#
# Usage: scripts/test-board.sh [--size 1024x768|1920x1080]... [--keep]
#   --size WxH   board screen; repeat for several boots (default 1024x768 only; CI runs the default)
#   --keep       keep the work dir (serial logs, screendumps, client captures, event dumps)
# Env: THINSHADOW_BIN=path (skip the cross-build), TEST_BOARD_TIMEOUT (seconds for the whole run after
#      the build; default 40 + 320 per size), TEST_BOARD_KEEP=1 (same as --keep).
#
# Per size, one boot with ts.tty1=0 (nothing redraws the framebuffer), every step under a timeout and
# the guest always powered off:
#   1. boot; fb0 geometry; the agent's THINSHADOW-CREDS line on the serial console (the password the
#      guest published); both uinput devices exist; boot-to-serving time (guest uptime at "listening on")
#   2. a known picture dd'ed onto fb0, checked with a QMP screendump
#   2b. the shipped defaults (allow-auto, 30 s, the framebuffer prompt), the local user on the serial
#      console: an admin logs in, the request box is on fb0 (screendump), nobody answers, the session
#      starts after the timeout (audit: by timeout) with the indicator on fb0, `thinshadow terminate`
#      ends it (xfreerdp exit 11); `thinshadow reject` refuses the next one (exit 7); after `thinshadow
#      mode management deny` the next admin is refused unasked (exit 7). Then the agent restarts with
#      --consent-timeout-auto 0 (sessions at once) for steps 3-6.
#   3. xfreerdp /sec:nla /bpp:32 from its own Xvfb through the host forward: the client's window equals
#      the QMP screendump pixel for pixel (lossless planar)
#   4. readers on the guest's "thinshadow keyboard"/"thinshadow pointer" event nodes; xdotool types a, b,
#      moves and clicks in the client window; the records (24-byte struct input_event) are pulled out
#      base64-encoded and decoded here: KEY_A and KEY_B down/up in order, BTN_LEFT down/up at the position
#   5. the agent's VmRSS, VmHWM and RssAnon idle and during the session (printed)
#   6. fault: kill -9 the agent mid-session; busybox init restarts it within 10 s, a new CREDS line with
#      a new password appears, `creds --json` agrees, the certificate is unchanged, the uinput devices
#      are back (one of each), and the new password logs in (xfreerdp +auth-only /sec:nla)
#   7. the local prompt: the agent restarted with --control and --local-prompt fb, an admin logs in, the
#      box is on fb0 (screendump: border at the logged place, nothing else changed), Enter sent to QEMU's
#      virtio keyboard accepts (audit: by local-prompt), the indicator shows, Ctrl+Alt+End ends the
#      session and fb0 equals the picture before; the audit lines are printed. Copies of the
#      screendumps are left at /tmp/thinshadow-prompt-WxH.png and /tmp/thinshadow-prompt-indicator-WxH.png
#   8. clean power-off
# Ends with one line "N passed, M failed"; the exit status is non-zero when a check failed.
# Needs: what scripts/run-board.sh installs, plus Xvfb, xfreerdp (freerdp2-x11), xdotool and
# python3-pil for /usr/bin/python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOARD=$ROOT/board/qemu-aarch64-virt
PY=/usr/bin/python3
PIX=$ROOT/scripts/e2e/pixels.py
EVC=$BOARD/evcheck.py
STATE=/var/lib/thinshadow

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

args=("$@")
sizes=()
keep=${TEST_BOARD_KEEP:-0}
while (($#)); do
    case $1 in
    --size) [[ $# -ge 2 ]] || usage; sizes+=("$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage ;;
    *) echo "test-board: unknown argument $1" >&2; usage ;;
    esac
done
((${#sizes[@]})) || sizes=(1024x768)
for s in "${sizes[@]}"; do
    case $s in 1024x768 | 1920x1080) ;; *) echo "test-board: --size must be 1024x768 or 1920x1080" >&2; exit 2 ;; esac
done

for tool in qemu-system-aarch64 Xvfb xfreerdp xdotool base64 timeout; do
    command -v "$tool" >/dev/null || { echo "test-board: missing tool: $tool" >&2; exit 2; }
done
"$PY" -c 'import PIL' 2>/dev/null || { echo "test-board: python3-pil missing for $PY (apt-get install python3-pil)" >&2; exit 2; }

# The build is not part of the deadline.
if [[ -z ${THINSHADOW_BIN:-} ]]; then
    THINSHADOW_BIN=$("$ROOT/scripts/cross-build.sh" | tail -n 1)
    export THINSHADOW_BIN
fi
if [[ -z ${_TEST_BOARD_UNDER_TIMEOUT:-} ]]; then
    export _TEST_BOARD_UNDER_TIMEOUT=1
    exec timeout -k 40 "${TEST_BOARD_TIMEOUT:-$((40 + 320 * ${#sizes[@]}))}" "$0" "${args[@]}"
fi

t0=$SECONDS
PASSED=0
FAILED=0
SUMMARY_DONE=0
PIDS=()
log() { echo "test-board: $*" >&2; }
info() { echo "INFO $*"; }
summary() {
    ((SUMMARY_DONE)) && return 0
    SUMMARY_DONE=1
    info "whole board test (after the build): $((SECONDS - t0)) s wall"
    echo "$PASSED passed, $FAILED failed"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/thinshadow-test-board.XXXXXX")
# shellcheck source=SCRIPTDIR/../board/qemu-aarch64-virt/lib.sh
. "$BOARD/lib.sh"
export BOARD_KEEP=1

# shellcheck source=SCRIPTDIR/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"
stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    PIDS=()
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    board_poweroff
    [[ -n $BOARD_DIR && -d $BOARD_DIR ]] && cp "$BOARD_LOG" "$work/serial-last.log" 2>/dev/null && rm -rf "$BOARD_DIR"
    summary
    ((FAILED == 0)) || rc=1
    if ((rc != 0)) || [[ $keep == 1 ]]; then
        log "work dir kept: $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'fail run "interrupted"; exit 130' INT
trap 'fail run "the whole-run deadline passed (TEST_BOARD_TIMEOUT)"; exit 124' TERM

# --- the initramfs: agent, busybox, modules, test pictures ---
mkdir -p "$work/extra/usr/share/thinshadow-test"
for s in "${sizes[@]}"; do
    "$PY" "$BOARD/pattern.py" make "${s%x*}" "${s#*x}" "$work/extra/usr/share/thinshadow-test/pattern-$s.xrgb"
done
"$BOARD/mkinitramfs.sh" -o "$work/initramfs.cpio.gz" --extra "$work/extra" "$THINSHADOW_BIN" >/dev/null

# --- helpers on the board ---

# The serial log, CRs removed.
serial() { tr -d '\r' <"$BOARD_LOG"; }

# creds_field JSON FIELD
creds_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# CREDS lines (after a prompt, maybe) after serial-log line $1 whose password is not $2; prints the JSON of the first.
new_creds() {
    local json
    while IFS= read -r json; do
        if [[ $(creds_field "$json" password 2>/dev/null) != "$2" ]]; then
            printf '%s\n' "$json"
            return 0
        fi
    done < <(serial | tail -n +"$(($1 + 1))" | sed -n 's/.*THINSHADOW-CREDS \({.*}\)$/\1/p')
    return 1
}
# Epoch seconds (milliseconds) of the agent's "listening on" lines after serial-log line $1.
# (A line may follow a shell prompt on the same serial line.)
listen_times() { serial | tail -n +"$(($1 + 1))" | grep -oE '[0-9]{9,}\.[0-9]{3} INFO +listening on' | cut -d' ' -f1; }
has_listen_after() { [[ -n $(listen_times "$1") ]]; }
log_lines() { serial | wc -l; }

# "event0 keyboard" / "event1 pointer" lines for our uinput devices.
find_nodes() {
    # shellcheck disable=SC2016 # expanded in the guest
    board_cmd 'for e in /sys/class/input/event*; do n=$(cat $e/device/name); case $n in "thinshadow keyboard") echo "${e##*/} keyboard";; "thinshadow pointer") echo "${e##*/} pointer";; esac; done'
}

agent_mem() {
    # shellcheck disable=SC2016 # expanded in the guest
    board_cmd 'p=$(cat /run/thinshadow.pid) && grep -E "^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem):" /proc/$p/status' | tr -s ' \t' ' ' | paste -sd, -
}

# --- helpers on the client side ---
CLI_DISPLAY=
CLI_FB=
start_client_xvfb() { # start_client_xvfb WxH
    local dir=$work/cli-fb
    mkdir -p "$dir"
    : >"$work/cli.dpy"
    timeout -k 3 600 Xvfb -displayfd 3 -screen 0 "$1x24" -fbdir "$dir" -nocursor -noreset -nolisten tcp \
        3>"$work/cli.dpy" >"$work/cli-xvfb.log" 2>&1 &
    PIDS+=("$!")
    wait_for 15 grep -q . "$work/cli.dpy" || return 1
    CLI_DISPLAY=":$(head -n 1 "$work/cli.dpy" | tr -dc 0-9)"
    CLI_FB=$dir/Xvfb_screen0
    wait_for 5 test -s "$CLI_FB"
}
xdo() { DISPLAY=$CLI_DISPLAY timeout 10 xdotool "$@"; }
client_window() { xdo search --onlyvisible --name '^FreeRDP' 2>/dev/null | head -n 1; }

# 7. the local prompt: the agent restarted with --control and --local-prompt fb; an admin logs in,
# the box is on fb0 (QMP screendump), Enter typed on QEMU's virtio keyboard (a real evdev device,
# not ours) accepts, the indicator replaces the box, Ctrl+Alt+End ends the session, fb0 is as before.
prompt_case() { # prompt_case SIZE W H USER
    local s=$1 w=$2 h=$3 user=$4 t=$1 n0 pass0 json pass rect top kbd cpid crc=0 result t_start=$SECONDS
    local before=$work/prompt-before-$s.png shot=$work/prompt-$s.png
    pass0=$(creds_field "$(board_cmd "thinshadow creds --state-dir $STATE --json")" password 2>/dev/null) || pass0=
    n0=$(log_lines)
    # shellcheck disable=SC2016 # expanded in the guest
    if ! board_cmd 'mkdir -p /run/thinshadow; echo "--control /run/thinshadow/control.sock --local-prompt fb" >/run/thinshadow.args; kill $(cat /run/thinshadow.pid)' >/dev/null ||
        ! wait_for 45 new_creds "$n0" "$pass0" >/dev/null; then
        fail "[$t] local prompt" "the agent did not come back with --local-prompt fb: $(serial | tail -n +"$n0" | grep -E 'INFO|WARN|ERROR' | tail -n 3 | tr '\n' '|')"
        return 1
    fi
    json=$(new_creds "$n0" "$pass0")
    pass=$(creds_field "$json" password)
    board_screendump "$before" || true
    start_client_xvfb "$((w + 64))x$((h + 64))" || { fail "[$t] local prompt" "no client Xvfb"; return 1; }
    env HOME="$work/client-home" XDG_CONFIG_HOME="$work/client-home" DISPLAY="$CLI_DISPLAY" \
        timeout -k 3 120 xfreerdp "/v:127.0.0.1:$BOARD_PORT" "/u:$user" "/p:$pass" /cert:ignore /sec:nla /bpp:32 \
        "/size:${w}x${h}" -decorations >"$work/xfreerdp-prompt-$s.log" 2>&1 &
    cpid=$!
    PIDS+=("$cpid")
    # The agent logs where it drew: 'local prompt: "Remote administration request from ..." at WxH+X+Y'.
    # (Lines after $n0 only: the default-flow cases drew the same boxes before.)
    if ! wait_for 45 prompt_rect_after "$n0" 'Remote administration request from 10\.0\.2\.2' >/dev/null ||
        ! rect=$(prompt_rect_after "$n0" 'Remote administration request from 10\.0\.2\.2'); then
        fail "[$t] local prompt" "no prompt within 45 s; agent: $(serial | tail -n +"$n0" | grep -E 'INFO|WARN' | tail -n 4 | tr '\n' '|')"
        return 1
    fi
    board_screendump "$shot" || true
    cp "$shot" "/tmp/thinshadow-prompt-$s.png" 2>/dev/null || true
    if result=$("$PY" "$BOARD/promptcheck.py" box "$before" "$shot" "$rect"); then
        pass "[$t] local prompt shown" "QMP screendump: $result"
    else
        fail "[$t] local prompt shown" "QMP screendump: $result"
    fi
    if serial | tail -n +"$n0" | grep -q 'reading keys from .*(thinshadow '; then
        fail "[$t] local prompt keyboards" "the agent reads its own uinput device: $(serial | grep 'reading keys from' | tr '\n' '|')"
    elif kbd=$(serial | tail -n +"$n0" | grep -o 'reading keys from .*' | head -n 1) && [[ -n $kbd ]]; then
        pass "[$t] local prompt keyboards" "$kbd (not the agent's own devices)"
    else
        fail "[$t] local prompt keyboards" "no local keyboard opened"
    fi
    # Enter on the board's own keyboard (QEMU's virtio keyboard, through the guest's evdev),
    # after the box's first second: keys in it are ignored (no accidental consent).
    sleep 1.5
    board_qmp '{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"ret"}]}}' >/dev/null || true
    if wait_for 15 prompt_rect_after "$n0" 'Remote administrator 10\.0\.2\.2 connected' >/dev/null &&
        top=$(prompt_rect_after "$n0" 'Remote administrator 10\.0\.2\.2 connected') &&
        serial | tail -n +"$n0" | grep -q '"event":"consent-answered".*"accepted":true,"by":"local-prompt"' &&
        serial | tail -n +"$n0" | grep -q '"event":"session-started"'; then
        # fbdev emulation shows fb0's writes after its deferred-I/O delay: a few looks.
        local tries=0
        until board_screendump "$work/prompt-indicator-$s.png" &&
            result=$("$PY" "$BOARD/promptcheck.py" box "$before" "$work/prompt-indicator-$s.png" "$top") ||
            ((++tries >= 10)); do sleep 0.3; done
        cp "$work/prompt-indicator-$s.png" "/tmp/thinshadow-prompt-indicator-$s.png" 2>/dev/null || true
        if "$PY" "$BOARD/promptcheck.py" box "$before" "$work/prompt-indicator-$s.png" "$top" >/dev/null; then
            pass "[$t] local prompt accept" "Enter on the virtio keyboard: consent-answered by local-prompt, session-started; indicator: $result"
        else
            fail "[$t] local prompt accept" "indicator after Enter: $result"
        fi
    else
        fail "[$t] local prompt accept" "no accepted session after Enter: $(serial | tail -n +"$n0" | grep -E 'local prompt|"event"' | tail -n 4 | tr '\n' '|')"
    fi
    board_qmp '{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"ctrl"},{"type":"qcode","data":"alt"},{"type":"qcode","data":"end"}]}}' >/dev/null || true
    if wait_for 15 log_after "$n0" 'local prompt: removed, the screen restored' &&
        serial | tail -n +"$n0" | grep -q '"event":"ended".*"cause":"terminated","by":"local-prompt"'; then
        board_screendump "$shot" || true
        wait_for 10 bash -c "! kill -0 $cpid 2>/dev/null" || true
        wait "$cpid" 2>/dev/null || crc=$?
        if result=$("$PY" "$BOARD/promptcheck.py" same "$before" "$shot"); then
            pass "[$t] local prompt end" "Ctrl+Alt+End: ended by local-prompt, xfreerdp exit $crc (11 = by user); fb0 restored: $result"
        else
            fail "[$t] local prompt end" "fb0 after the session: $result"
        fi
    else
        fail "[$t] local prompt end" "Ctrl+Alt+End did not end the session: $(serial | tail -n +"$n0" | grep -E 'local prompt|"event"' | tail -n 4 | tr '\n' '|')"
    fi
    serial | tail -n +"$n0" | grep -oE '\{"ts":[0-9]+,"event":[^}]*\}' | sed "s/^/INFO [$t] audit: /"
    info "[$t] local prompt case: $((SECONDS - t_start)) s"
    stop_all
}

# The shipped default flow, the local user on the serial console (the board as it boots: allow-auto,
# 30 s to answer, the framebuffer prompt). Each case runs one xfreerdp; the audit lines are the
# agent's own on the serial console.
ADMIN_PID=
ADMIN_RC=
admin_start() { # admin_start NAME USER PASSWORD W H: xfreerdp in the background, pid in ADMIN_PID
    env HOME="$work/client-home" XDG_CONFIG_HOME="$work/client-home" DISPLAY="$CLI_DISPLAY" \
        timeout -k 3 120 xfreerdp "/v:127.0.0.1:$BOARD_PORT" "/u:$2" "/p:$3" /cert:ignore /sec:nla /bpp:32 \
        "/size:${4}x${5}" -decorations >"$work/xfreerdp-$1.log" 2>&1 &
    ADMIN_PID=$!
    PIDS+=("$ADMIN_PID")
}
admin_exit() { # admin_exit SECS: ADMIN_RC = the client's exit status, or "still running"
    ADMIN_RC="still running"
    wait_for "$1" bash -c "! kill -0 $ADMIN_PID 2>/dev/null" || return 1
    ADMIN_RC=0
    wait "$ADMIN_PID" 2>/dev/null || ADMIN_RC=$?
}
log_after() { serial | tail -n +"$(($1 + 1))" | grep -qE -- "$2"; } # log_after N ERE
# audit_after N EVENT [ERE]: an audit line of EVENT (also matching ERE) after serial-log line N.
audit_after() { serial | tail -n +"$(($1 + 1))" | grep "\"event\":\"$2\"" | grep -qE -- "${3:-.}"; }
audit_lines() { serial | tail -n +"$(($1 + 1))" | grep -oE '\{"ts":[0-9]+,"event":[^}]*\}'; }
prompt_rect_after() { # prompt_rect_after N TEXT-ERE: the rect of the first such prompt line after line N
    serial | tail -n +"$(($1 + 1))" | grep -E "local prompt: \"$2" | head -n 1 |
        sed -n 's/.* at \([0-9]*x[0-9]*+[0-9]*+[0-9]*\)$/\1/p' | grep .
}

flow_cases() { # flow_cases SIZE W H USER PASSWORD
    local s=$1 w=$2 h=$3 user=$4 pass=$5 t=$1 n0 rect top result t0 waited
    local before=$work/flow-before-$s.png shot=$work/flow-$s.png
    start_client_xvfb "$((w + 64))x$((h + 64))" || { fail "[$t] default flow" "no client Xvfb"; return 1; }
    board_screendump "$before" || true

    # a. allow-auto, nobody answers: the prompt, then the session after the timeout, the indicator;
    #    `thinshadow terminate` on the serial console ends it (xfreerdp exit 11).
    n0=$(log_lines)
    admin_start flow-timeout "$user" "$pass" "$w" "$h"
    if ! wait_for 45 prompt_rect_after "$n0" 'Remote administration request from 10\.0\.2\.2' >/dev/null; then
        fail "[$t] default: prompt" "no prompt within 45 s: $(serial | tail -n +"$n0" | grep -E 'INFO|WARN|"event"' | tail -n 4 | tr '\n' '|')"
        return 1
    fi
    t0=$SECONDS
    rect=$(prompt_rect_after "$n0" 'Remote administration request from 10\.0\.2\.2')
    board_screendump "$shot" || true
    if audit_after "$n0" consent-asked && result=$("$PY" "$BOARD/promptcheck.py" box "$before" "$shot" "$rect"); then
        pass "[$t] default: prompt" "consent-asked audited; the request box on fb0 (QMP screendump): $result"
    else
        fail "[$t] default: prompt" "consent-asked audited: $(audit_after "$n0" consent-asked && echo yes || echo no); screendump: ${result:-}"
    fi
    cp "$shot" "/tmp/thinshadow-default-prompt-$s.png" 2>/dev/null || true
    if wait_for 45 audit_after "$n0" session-started &&
        audit_after "$n0" consent-answered '"accepted":true.*"timeout"|"timeout".*"accepted":true'; then
        waited=$((SECONDS - t0))
        if wait_for 10 prompt_rect_after "$n0" 'Remote administrator 10\.0\.2\.2 connected' >/dev/null &&
            top=$(prompt_rect_after "$n0" 'Remote administrator 10\.0\.2\.2 connected'); then
            board_screendump "$shot" || true
            cp "$shot" "/tmp/thinshadow-default-indicator-$s.png" 2>/dev/null || true
            if result=$("$PY" "$BOARD/promptcheck.py" box "$before" "$shot" "$top") && ((waited >= 20)); then
                pass "[$t] default: no answer" "session-started ${waited} s after the prompt (timeout 30 s, answered by timeout); indicator: $result"
            else
                fail "[$t] default: no answer" "session after ${waited} s (want ~30); indicator: $result"
            fi
        else
            fail "[$t] default: no answer" "the session started after ${waited} s but no indicator was drawn"
        fi
    else
        fail "[$t] default: no answer" "no session-started answered by timeout within 45 s: $(audit_lines "$n0" | tail -n 3 | tr '\n' '|')"
    fi
    if board_cmd -t 20 thinshadow terminate >/dev/null && admin_exit 20 && [[ $ADMIN_RC == 11 ]] &&
        audit_after "$n0" ended '"terminated"'; then
        pass "[$t] default: terminate" "\`thinshadow terminate\` on the serial console: xfreerdp exit 11, ended audited"
    else
        fail "[$t] default: terminate" "xfreerdp exit $ADMIN_RC (want 11); $(audit_lines "$n0" | tail -n 1)"
    fi
    audit_lines "$n0" | sed "s/^/INFO [$t] default session audit: /"
    stop_pid "$ADMIN_PID"

    # b. the local user rejects from the serial console: the client is refused (exit 7).
    n0=$(log_lines)
    admin_start flow-reject "$user" "$pass" "$w" "$h"
    if wait_for 45 audit_after "$n0" consent-asked && board_cmd -t 20 thinshadow reject >/dev/null &&
        admin_exit 20 && [[ $ADMIN_RC == 7 ]] && audit_after "$n0" consent-answered '"accepted":false'; then
        pass "[$t] serial: reject" "\`thinshadow reject\`: consent-answered accepted false, xfreerdp exit 7 (server denied)"
    else
        fail "[$t] serial: reject" "xfreerdp exit $ADMIN_RC (want 7); $(audit_lines "$n0" | tail -n 3 | tr '\n' '|')"
    fi
    stop_pid "$ADMIN_PID"

    # c. Deny set from the serial console refuses the next admin, nobody is asked (exit 7).
    n0=$(log_lines)
    if board_cmd -t 20 thinshadow mode management deny >/dev/null; then
        admin_start flow-deny "$user" "$pass" "$w" "$h"
        if admin_exit 45 && [[ $ADMIN_RC == 7 ]] && ! audit_after "$n0" consent-asked; then
            pass "[$t] serial: deny" "\`thinshadow mode management deny\`: the next admin refused, not asked, xfreerdp exit 7"
        else
            fail "[$t] serial: deny" "xfreerdp exit $ADMIN_RC (want 7); $(audit_lines "$n0" | tail -n 3 | tr '\n' '|')"
        fi
    else
        fail "[$t] serial: deny" "\`thinshadow mode management deny\` failed"
    fi
    board_cmd -t 20 thinshadow mode management allow-auto >/dev/null || fail "[$t] serial: deny" "could not set allow-auto again"
    stop_all
}

# ------------------------------------------------------------------------------------------------
run_size() {
    local s=$1 w=${1%x*} h=${1#*x} t=$1
    local json user password cert geo vsize bpp stride nodes kbd ptr line0 sync up boot_epoch listen
    log "--- $s ---"

    # 1. boot, fb0, credentials, uinput devices
    if ! board_boot --size "$s" --initrd "$work/initramfs.cpio.gz" --append ts.tty1=0; then
        fail "[$t] boot" "the board did not boot (see $work)"
        return 1
    fi
    local t_qemu=$_BOARD_T0
    # shellcheck disable=SC2016 # expanded in the guest
    if geo=$(board_cmd 'test -c /dev/uinput && cd /sys/class/graphics/fb0 && echo $(cat virtual_size bits_per_pixel stride)') &&
        read -r vsize bpp stride <<<"$geo" && [[ $vsize == "$w,$h" && $bpp == 32 && $stride == $((4 * w)) ]]; then
        pass "[$t] board" "booted in ${BOARD_BOOT_SECONDS} s; fb0 $vsize ${bpp}bpp stride $stride; /dev/uinput present"
    else
        fail "[$t] board" "fb0 '$geo' (want $w,$h 32 $((4 * w))) or no /dev/uinput"
    fi

    # A serial line may start with the shell's prompt: the CREDS JSON is what follows the tag.
    if ! line0=$(board_wait_log 'THINSHADOW-CREDS \{' 60); then
        fail "[$t] credentials" "no THINSHADOW-CREDS line within 60 s; agent lines: $(serial | grep -E 'INFO|WARN|ERROR|agent exited' | tail -n 5 | tr '\n' '|')"
        return 1
    fi
    local t_creds
    t_creds=$(awk -v a="$t_qemu" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    json=${line0#*THINSHADOW-CREDS }
    if ! { user=$(creds_field "$json" user) && password=$(creds_field "$json" password) &&
        cert=$(creds_field "$json" cert_sha256); }; then
        fail "[$t] credentials" "cannot parse: $line0"
        return 1
    fi
    if [[ -z $user || ${#password} -lt 12 ]]; then
        fail "[$t] credentials" "no usable credentials published: $line0"
        return 1
    fi
    pass "[$t] credentials" "CREDS line ${t_creds} s after QEMU start: user $user, a ${#password}-character password, port $(creds_field "$json" port), cert ${cert:0:23}…"
    # The address the admin types: the board's eth0 (10.0.2.15), published by the static binary.
    if [[ $(creds_field "$json" addresses) == *"'10.0.2.15'"* ]]; then
        pass "[$t] published address" "addresses $(creds_field "$json" addresses)"
    else
        fail "[$t] published address" "eth0's 10.0.2.15 is not in the CREDS line: $(creds_field "$json" addresses)"
    fi

    # Boot-to-serving: the guest's uptime when the agent logged "listening on". The agent's log
    # stamps are wall-clock seconds; find the boot's wall-clock time at a second boundary.
    listen=$(listen_times 0 | head -n 1)
    # shellcheck disable=SC2016 # expanded in the guest
    if [[ -n $listen ]] && sync=$(board_cmd 's=$(date +%s); while [ "$(date +%s)" = "$s" ]; do :; done; echo $((s + 1)) $(cut -d" " -f1 /proc/uptime)'); then
        read -r up_epoch up <<<"$sync"
        boot_epoch=$(awk -v e="$up_epoch" -v u="$up" 'BEGIN { printf "%.3f", e - u }')
        info "[$t] boot-to-serving: agent 'listening on' at guest uptime $(awk -v l="$listen" -v b="$boot_epoch" 'BEGIN { printf "%.2f", l - b }') s (QEMU start to CREDS line on the host: ${t_creds} s)"
    else
        info "[$t] boot-to-serving: no 'listening on' line"
    fi

    if serial | grep -q 'view-only'; then
        fail "[$t] uinput devices" "the agent is view-only: $(serial | grep 'view-only' | head -n 1)"
    elif nodes=$(find_nodes) && kbd=$(awk '$2 == "keyboard" { print $1 }' <<<"$nodes") &&
        ptr=$(awk '$2 == "pointer" { print $1 }' <<<"$nodes") && [[ $kbd == event* && $ptr == event* ]]; then
        pass "[$t] uinput devices" "\"thinshadow keyboard\" = $kbd, \"thinshadow pointer\" = $ptr"
    else
        fail "[$t] uinput devices" "want one keyboard and one pointer node, got: $(tr '\n' ' ' <<<"${nodes:-}")"
    fi
    info "[$t] agent memory, idle: $(agent_mem)"

    # 2. the picture on fb0
    # shellcheck disable=SC2016 # expanded in the guest
    board_cmd 'for v in /sys/class/vtconsole/vtcon*; do grep -q "frame buffer" $v/name && echo 0 >$v/bind; done; true' >/dev/null
    local shot=$work/screendump-$s.png result=
    if board_cmd -t 60 "dd if=/usr/share/thinshadow-test/pattern-$s.xrgb of=/dev/fb0 bs=65536 2>/dev/null" >/dev/null; then
        local _
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            board_screendump "$shot" && result=$("$PY" "$BOARD/pattern.py" check "$w" "$h" "$shot") && break
            result=${result:-screendump failed}
            sleep 0.5
        done
        if [[ $result == "all "* ]]; then
            pass "[$t] picture on fb0" "QMP screendump: $result"
        else
            fail "[$t] picture on fb0" "QMP screendump: $result"
        fi
    else
        fail "[$t] picture on fb0" "dd onto /dev/fb0 failed"
    fi

    # 2b. the shipped default flow; then the agent restarts with sessions at once for the rest
    flow_cases "$s" "$w" "$h" "$user" "$password" || true
    stop_all
    local n_r pass_r
    n_r=$(log_lines)
    # shellcheck disable=SC2016 # expanded in the guest
    if board_cmd 'echo "--consent-timeout-auto 0" >/run/thinshadow.args; kill $(cat /run/thinshadow.pid)' >/dev/null &&
        wait_for 45 new_creds "$n_r" "$password" >/dev/null; then
        pass_r=$(creds_field "$(new_creds "$n_r" "$password")" password)
        password=$pass_r
        info "[$t] agent restarted with --consent-timeout-auto 0 (sessions at once) for the checks below"
    else
        fail "[$t] restart for sessions at once" "no new CREDS line after the restart"
        return 1
    fi

    # 3. the client shows the board's screen
    local clog=$work/xfreerdp-$s.log cpid win='' X Y WIDTH HEIGHT crop=''
    if ! start_client_xvfb "$((w + 64))x$((h + 64))"; then
        fail "[$t] RDP session" "the client's Xvfb did not start: $(tail -n 3 "$work/cli-xvfb.log")"
        return 1
    fi
    local t_conn=$SECONDS
    env HOME="$work/client-home" XDG_CONFIG_HOME="$work/client-home" DISPLAY="$CLI_DISPLAY" \
        timeout -k 3 300 xfreerdp "/v:127.0.0.1:$BOARD_PORT" "/u:$user" "/p:$password" /cert:ignore /sec:nla /bpp:32 \
        "/size:${w}x${h}" -decorations >"$clog" 2>&1 &
    cpid=$!
    PIDS+=("$cpid")
    window_or_exit() { win=$(client_window) && [[ -n $win ]] || ! kill -0 "$cpid" 2>/dev/null; }
    if ! wait_for 45 window_or_exit || [[ -z $win ]]; then
        fail "[$t] RDP session" "no FreeRDP window within 45 s; xfreerdp: $(tail -n 2 "$clog" | tr '\n' '|')"
        return 1
    fi
    X='' Y='' WIDTH='' HEIGHT=''
    eval "$(xdo getwindowgeometry --shell "$win" | grep -E '^(X|Y|WIDTH|HEIGHT)=[0-9]+$')"
    crop=$X,$Y,$WIDTH,$HEIGHT
    # The board's screen as QEMU shows it now (with the indicator box), against the client's window.
    wait_for 15 prompt_rect_after "$n_r" 'Remote administrator 10\.0\.2\.2 connected' >/dev/null ||
        log "no indicator line after the restart"
    board_screendump "$shot" || true
    if [[ $WIDTH != "$w" || $HEIGHT != "$h" ]]; then
        fail "[$t] RDP session" "window $win is ${WIDTH}x${HEIGHT}, the board is ${w}x${h}"
    elif result=$("$PY" "$PIX" wait-match "$shot" "$CLI_FB" --crop "$crop" --timeout 45 --diff "$work/diff-$s.png" 2>&1); then
        pass "[$t] RDP session" "window $crop $((SECONDS - t_conn)) s after xfreerdp started, against the QMP screendump: $result"
    else
        "$PY" "$PIX" xwd2png "$CLI_FB" "$work/client-$s.png" --crop "$crop" 2>/dev/null || true
        fail "[$t] RDP session" "client window $crop against the QMP screendump: $result"
    fi

    # 4. input through the client, read back from the guest's event nodes
    if [[ -n ${kbd:-} && -n ${ptr:-} ]]; then
        # The pointer is re-created when a session's size differs from its range: look again.
        nodes=$(find_nodes) || true
        kbd=$(awk '$2 == "keyboard" { print $1 }' <<<"$nodes")
        ptr=$(awk '$2 == "pointer" { print $1 }' <<<"$nodes")
        # Two background readers; wait until each has its node open (cat's fd 3) before anything is typed.
        local readers
        readers=$(board_cmd "cat /dev/input/$kbd >/tmp/ts-kbd.bin 2>/dev/null </dev/null & k=\$!;" \
            "cat /dev/input/$ptr >/tmp/ts-ptr.bin 2>/dev/null </dev/null & p=\$!; i=0;" \
            "while ! { [ -e /proc/\$k/fd/3 ] && [ -e /proc/\$p/fd/3 ]; } && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i + 1)); done;" \
            "readlink /proc/\$k/fd/3; readlink /proc/\$p/fd/3") || true
        [[ $readers == "/dev/input/$kbd"$'\n'"/dev/input/$ptr" ]] || log "the guest's event readers did not start: $readers"
        local px=$((w * 5 / 8 + 3)) py=$((h * 3 / 4 + 1))
        xdo windowfocus --sync "$win" >/dev/null 2>&1 || xdo windowfocus "$win" >/dev/null 2>&1 || true
        sleep 0.3
        xdo key --delay 80 a b >/dev/null 2>&1 || log "xdotool key failed"
        xdo mousemove --window "$win" 40 30 >/dev/null 2>&1 || log "xdotool mousemove failed"
        sleep 0.2
        xdo mousemove --window "$win" "$px" "$py" >/dev/null 2>&1 || log "xdotool mousemove failed"
        sleep 0.2
        xdo click 1 >/dev/null 2>&1 || log "xdotool click failed"
        local kres pres kok=1 pok=1 end=$((SECONDS + 15))
        while :; do
            board_cmd 'base64 /tmp/ts-kbd.bin' | base64 -d >"$work/kbd-$s.bin" 2>/dev/null || true
            board_cmd 'base64 /tmp/ts-ptr.bin' | base64 -d >"$work/ptr-$s.bin" 2>/dev/null || true
            kok=0 pok=0
            kres=$("$PY" "$EVC" keys "$work/kbd-$s.bin" 30 48 2>&1) || kok=$?
            pres=$("$PY" "$EVC" pointer "$work/ptr-$s.bin" "$px" "$py" 1 2>&1) || pok=$?
            if ((kok == 0 && pok == 0)) || ((SECONDS >= end)); then break; fi
            sleep 0.5
        done
        if ((kok == 0)); then pass "[$t] keyboard input" "/dev/input/$kbd: $(head -n 1 <<<"$kres")"; else fail "[$t] keyboard input" "/dev/input/$kbd: $(head -n 1 <<<"$kres")"; fi
        sed -n '2,$p' <<<"$kres" | head -n 20
        if ((pok == 0)); then pass "[$t] pointer input" "/dev/input/$ptr: $(head -n 1 <<<"$pres")"; else fail "[$t] pointer input" "/dev/input/$ptr: $(head -n 1 <<<"$pres")"; fi
        sed -n '2,$p' <<<"$pres" | head -n 20
    else
        fail "[$t] input" "not run: no uinput devices"
    fi

    # 5. memory during the session
    info "[$t] agent memory, in the session: $(agent_mem)"

    # 6. fault: kill -9 the agent mid-session
    local pid0 n0 t_kill newjson newpass guest_json crc=0
    n0=$(log_lines)
    if pid0=$(board_cmd 'cat /run/thinshadow.pid') && [[ $pid0 =~ ^[0-9]+$ ]] && board_cmd "kill -9 $pid0" >/dev/null; then
        t_kill=$SECONDS
        if wait_for 10 has_listen_after "$n0"; then
            pass "[$t] restart after kill -9" "pid $pid0 killed; 'listening on' again $((SECONDS - t_kill)) s later (pid $(board_cmd 'cat /run/thinshadow.pid' || echo '?'))"
        else
            fail "[$t] restart after kill -9" "no new 'listening on' within 10 s; serial: $(serial | tail -n +"$n0" | grep -vE '^(@|_p=)' | tail -n 5 | tr '\n' '|')"
        fi
        # The killed agent's "connected" indicator stayed on fb0; the new one takes it away.
        if serial | tail -n +"$n0" | grep -q 'took away the box an earlier agent left'; then
            pass "[$t] indicator after kill -9" "the new agent took away the box the killed one left on fb0"
        else
            fail "[$t] indicator after kill -9" "no take-back line: $(serial | tail -n +"$n0" | grep 'local prompt' | tail -n 2 | tr '\n' '|')"
        fi
        if wait_for 15 new_creds "$n0" "$password" >/dev/null; then
            newjson=$(new_creds "$n0" "$password")
            newpass=$(creds_field "$newjson" password)
            guest_json=$(board_cmd "thinshadow creds --state-dir $STATE --json") || guest_json='{}'
            if [[ $(creds_field "$guest_json" password 2>/dev/null) != "$newpass" ]]; then
                fail "[$t] new credentials" "the CREDS line's password differs from \`creds --json\`"
            elif [[ $(creds_field "$newjson" cert_sha256) != "$cert" || $(creds_field "$guest_json" cert_sha256) != "$cert" ]]; then
                fail "[$t] new credentials" "certificate changed: $cert -> $(creds_field "$newjson" cert_sha256)"
            else
                pass "[$t] new credentials" "new CREDS line $((SECONDS - t_kill)) s after the kill, password rotated, \`creds --json\` agrees, certificate unchanged"
            fi
            local rc_new=0 rc_old=0
            env HOME="$work/client-home" XDG_CONFIG_HOME="$work/client-home" DISPLAY="$CLI_DISPLAY" timeout 60 xfreerdp \
                "/v:127.0.0.1:$BOARD_PORT" "/u:$user" "/p:$newpass" /cert:ignore /sec:nla +auth-only >"$work/auth-new-$s.log" 2>&1 || rc_new=$?
            env HOME="$work/client-home" XDG_CONFIG_HOME="$work/client-home" DISPLAY="$CLI_DISPLAY" timeout 60 xfreerdp \
                "/v:127.0.0.1:$BOARD_PORT" "/u:$user" "/p:$password" /cert:ignore /sec:nla +auth-only >"$work/auth-old-$s.log" 2>&1 || rc_old=$?
            if ((rc_new == 0 && rc_old != 0 && rc_old != 124)); then
                pass "[$t] login after restart" "+auth-only /sec:nla: new password exit 0, old password exit $rc_old"
            else
                fail "[$t] login after restart" "+auth-only /sec:nla: new password exit $rc_new (want 0), old password exit $rc_old (want a refusal)"
            fi
        else
            fail "[$t] new credentials" "no CREDS line with a new password within 15 s of the kill"
        fi
        if kill -0 "$cpid" 2>/dev/null && ! wait_for 10 bash -c "! kill -0 $cpid 2>/dev/null"; then
            info "[$t] the client still runs after its server was killed"
        else
            wait "$cpid" 2>/dev/null || crc=$?
            info "[$t] the client ended when its server was killed: xfreerdp exit $crc"
        fi
        nodes=$(find_nodes) || true
        if [[ $(grep -c ' keyboard$' <<<"$nodes") == 1 && $(grep -c ' pointer$' <<<"$nodes") == 1 ]]; then
            pass "[$t] uinput after restart" "one keyboard, one pointer: $(tr '\n' ' ' <<<"$nodes")"
        else
            fail "[$t] uinput after restart" "want one keyboard and one pointer node, got: $(tr '\n' ' ' <<<"$nodes")"
        fi
    else
        fail "[$t] restart after kill -9" "no agent pid to kill ('${pid0:-}')"
    fi
    stop_all
    prompt_case "$s" "$w" "$h" "$user" || true
    # The agent's warnings and errors (the old-password login above is one on purpose).
    serial | grep -E 'ERROR|WARN|panick' | grep -v '^@' | sed -e "s/^/INFO [$t] agent log: /" \
        -e 's/login failed: wrong user name or password (nla[^)]*)$/& (expected: the old password)/' | head -n 20 || true

    # 8. power off
    local blog=$BOARD_LOG bdir=$BOARD_DIR
    board_poweroff
    cp "$blog" "$work/serial-$s.log" 2>/dev/null || true
    rm -rf "$bdir"
    if tr -d '\r' <"$work/serial-$s.log" | grep -q 'reboot: Power down'; then
        pass "[$t] power-off" "the guest powered off cleanly"
    else
        fail "[$t] power-off" "no 'reboot: Power down' on the serial console"
    fi
}

for s in "${sizes[@]}"; do
    run_size "$s" || true
    stop_all
    if [[ -n $BOARD_DIR && -d $BOARD_DIR ]]; then
        board_poweroff
        cp "$BOARD_LOG" "$work/serial-$s.log" 2>/dev/null || true
        rm -rf "$BOARD_DIR"
    fi
    BOARD_DIR=
done
