#!/usr/bin/env bash
# Board check for the KMS source (issue 17): a DRM master (examples/kmsdemo) owns virtio-gpu's CRTC,
# fb0 keeps the console's old picture. The admin's xfreerdp window must equal the QMP screendump
# pixel for pixel with the shipped --screen auto (an agent started before the demo took the display
# looks again when the admin connects), before and after a page flip, and a key the admin types
# reaches the demo's own evdev reader; with fbdev:/dev/fb0 the same comparison must fail (the gap
# the KMS source closes). Then a real compositor: Debian's arm64 Weston 10 (DRM backend, pixman
# renderer, kiosk-shell; board/qemu-aarch64-virt/fetch-weston.sh) becomes DRM master once the demo
# is gone and shows weston-simple-shm, stopped on one frame; with --screen auto the admin's window
# must equal the screendump pixel for pixel, and Caps Lock typed by the admin must reach Weston
# (its keyboard LED follows its own xkb state).
#
# Usage: scripts/test-board-kms.sh [--rgb565] [--keep]
#   --rgb565: the board on cirrus-vga (virtio-gpu and bochs make only 32-bpp buffers), the demo in
#   RGB565, and only the demo's checks (the match before and after a flip, typing; the reference is
#   the demo's picture, since QEMU cannot screendump this cirrus); no cursor plane there, and fb0
#   and Weston are the default run's.
# Env: THINSHADOW_BIN, KMSDEMO_BIN (aarch64 static builds; built with the cross linker when unset).
# Ends with "N passed, M failed"; non-zero exit when a check failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOARD=$ROOT/board/qemu-aarch64-virt
PY=/usr/bin/python3
PIX=$ROOT/scripts/e2e/pixels.py
STATE=/var/lib/thinshadow
W=1024 H=768
demo_args=
board_args=()
rgb565=0
keep=0
while (($#)); do
    case $1 in
    --rgb565) demo_args=--rgb565 board_args=(--display cirrus) rgb565=1; shift ;;
    --keep) keep=1; shift ;;
    *) echo "test-board-kms: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [[ -z ${THINSHADOW_BIN:-} || -z ${KMSDEMO_BIN:-} ]]; then
    # The same flags as the shipped binary (scripts/cross-build.sh), so nothing is built twice.
    bin=$("$ROOT/scripts/cross-build.sh" --example kmsdemo | tail -n 1)
    dir=$(dirname "$bin")
    THINSHADOW_BIN=${THINSHADOW_BIN:-$dir/thinshadow}
    KMSDEMO_BIN=${KMSDEMO_BIN:-$dir/examples/kmsdemo}
fi

PASSED=0 FAILED=0 PIDS=()
# QEMU's own limit: three sessions and Weston under TCG on a loaded 2-core host.
BOARD_TIMEOUT=${BOARD_TIMEOUT:-1200}
# shellcheck source=SCRIPTDIR/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/thinshadow-board-kms.XXXXXX")
# shellcheck source=SCRIPTDIR/../board/qemu-aarch64-virt/lib.sh
. "$BOARD/lib.sh"
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    board_poweroff
    echo "$PASSED passed, $FAILED failed"
    ((keep)) || ((FAILED)) || rm -rf "$work"
    ((FAILED == 0))
}
trap cleanup EXIT
serial() { tr -d '\r' <"$BOARD_LOG"; }

mkdir -p "$work/extra/usr/bin" "$work/extra/usr/share/thinshadow-test"
install -m 755 "$KMSDEMO_BIN" "$work/extra/usr/bin/kmsdemo"
# A known picture for fb0: what the fbdev session must show while a DRM master hides it.
"$PY" "$BOARD/pattern.py" make "$W" "$H" "$work/extra/usr/share/thinshadow-test/pattern.xrgb"
"$PY" "$BOARD/pattern.py" png "$W" "$H" "$work/pattern.png"
extras=(--extra "$work/extra")
if ((rgb565)); then
    # The demo's pictures as a screen shows them: the board's own demo binary draws them here.
    for p in A B; do
        qemu-aarch64-static "$KMSDEMO_BIN" --picture "$p" "${W}x$H" "$work/demo-$p.ppm" --rgb565
    done
    extras+=(--module 'cirrus|cirrus-qemu')
else
    # Weston and exactly the libraries it loads (fetched once, cached); its size is printed.
    "$BOARD/fetch-weston.sh" --stage "$work/weston" >/dev/null
    extras+=(--extra "$work/weston")
fi
"$BOARD/mkinitramfs.sh" -o "$work/initramfs.cpio.gz" "${extras[@]}" "$THINSHADOW_BIN" >/dev/null
board_boot --initrd "$work/initramfs.cpio.gz" "${board_args[@]}" || { fail boot "the board did not come up"; exit 1; }

# reference FILE A|B: what the screen shows (the demo's picture A or B, if it is the demo's).
# QEMU renders cirrus-vga as a text screen (8x1) when no VGA BIOS set it up, as on this board:
# there the demo's own picture, drawn on the host, is the reference, not a screendump.
reference() {
    if ((rgb565)); then
        cp "$work/demo-$2.ppm" "$1"
    else
        board_screendump "$1"
    fi
}

# session NAME WANT(match|same|differ): xfreerdp against the screendump, then (for match: the
# demo) after a flip; for same, the function during_NAME (if any) runs while the session is up,
# with DPY and WIN set.
session() {
    local name=$1 want=$2 json user password dpy shot=$work/shot-$1.png clog=$work/xfreerdp-$1.log win= X Y result rc
    json=$(board_cmd "thinshadow creds --state-dir $STATE --json")
    user=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["user"])' "$json")
    password=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["password"])' "$json")
    mkdir -p "$work/fb-$name"
    : >"$work/dpy-$name"
    timeout 600 Xvfb -displayfd 3 -screen 0 "$((W + 64))x$((H + 64))x24" -fbdir "$work/fb-$name" -nocursor -noreset -nolisten tcp \
        3>"$work/dpy-$name" >/dev/null 2>&1 &
    PIDS+=("$!")
    wait_for 15 grep -q . "$work/dpy-$name"
    dpy=":$(head -n 1 "$work/dpy-$name" | tr -dc 0-9)"
    env HOME="$work/home" XDG_CONFIG_HOME="$work/home" DISPLAY="$dpy" timeout 300 xfreerdp "/v:127.0.0.1:$BOARD_PORT" \
        "/u:$user" "/p:$password" /cert:ignore /sec:nla /bpp:32 "/size:${W}x${H}" -decorations >"$clog" 2>&1 &
    PIDS+=("$!")
    find_win() { win=$(DISPLAY=$dpy xdotool search --onlyvisible --name '^FreeRDP' 2>/dev/null | head -n 1) && [[ -n $win ]]; }
    wait_for 60 find_win || { fail "$name session" "no FreeRDP window: $(tail -n 2 "$clog" | tr '\n' '|')"; return; }
    eval "$(DISPLAY=$dpy xdotool getwindowgeometry --shell "$win" | grep -E '^(X|Y)=[0-9]+$')"
    reference "$shot" A
    rc=0
    result=$("$PY" "$PIX" wait-match "$shot" "$work/fb-$name/Xvfb_screen0" --crop "$X,$Y,$W,$H" --timeout 40 2>&1) || rc=$?
    if [[ $want == match ]]; then
        ((rc == 0)) && pass "$name before the flip" "$result" || fail "$name before the flip" "$result"
        board_cmd 'touch /tmp/kmsdemo-flip; sleep 1; tail -n 1 /tmp/kmsdemo.log' >/dev/null
        cp "$shot" "$work/before-$name.png"
        reference "$shot" B
        # The flip really changed what is scanned out (else "after" proves nothing).
        if ((rgb565)); then
            board_cmd 'tail -n 3 /tmp/kmsdemo.log' | grep -q 'showing B' ||
                fail "$name flip" "the demo did not flip: $(board_cmd 'cat /tmp/kmsdemo.log' | tr '\n' '|')"
        elif "$PY" "$PIX" compare "$work/before-$name.png" "$shot" >/dev/null; then
            fail "$name flip" "the screendump did not change: $(board_cmd 'cat /tmp/kmsdemo.log' | tr '\n' '|')"
        fi
        rc=0
        result=$("$PY" "$PIX" wait-match "$shot" "$work/fb-$name/Xvfb_screen0" --crop "$X,$Y,$W,$H" --timeout 40 2>&1) || rc=$?
        ((rc == 0)) && pass "$name after the flip" "$result" || fail "$name after the flip" "$result"
        # The admin's typing reaches the DRM master's own input reader: kmsdemo reads every evdev
        # node as a compositor does and logs each key press (KEY_A is 30).
        DISPLAY=$dpy timeout 10 xdotool windowfocus --sync "$win" >/dev/null 2>&1 ||
            DISPLAY=$dpy timeout 10 xdotool windowfocus "$win" >/dev/null 2>&1 || true
        sleep 0.3
        DISPLAY=$dpy timeout 10 xdotool key --delay 80 a >/dev/null 2>&1 || true
        typed() { board_cmd 'grep "key 30 down" /tmp/kmsdemo.log' | grep -q 'key 30 down'; }
        if wait_for 15 typed; then
            pass "$name typing" "the DRM master read it: $(board_cmd 'grep "key 30 down" /tmp/kmsdemo.log | head -n 1')"
        else
            fail "$name typing" "kmsdemo saw no KEY_A: $(board_cmd 'tail -n 3 /tmp/kmsdemo.log' | tr '\n' '|')"
        fi
        # The local user's pointer moves (the demo's cursor plane); checked after the session.
        board_cmd 'echo "300 200" >/tmp/kmsdemo-cursor; sleep 1.5; tail -n 1 /tmp/kmsdemo.log' >/dev/null
    elif [[ $want == same ]]; then
        ((rc == 0)) && pass "$name match" "$result" || fail "$name match" "$result"
        if declare -F "during_$name" >/dev/null; then DPY=$dpy WIN=$win "during_$name"; fi
    else
        ((rc != 0)) && pass "$name differs" "as expected, fb0 is not what is scanned out: $result" ||
            fail "$name differs" "the fbdev session matched the screendump: $result"
        # ...and not because the session is broken: it shows exactly what fb0 holds.
        rc=0
        result=$("$PY" "$PIX" wait-match "$work/pattern.png" "$work/fb-$name/Xvfb_screen0" --crop "$X,$Y,$W,$H" --timeout 40 2>&1) || rc=$?
        ((rc == 0)) && pass "$name shows fb0" "the picture written to fb0 before the demo: $result" ||
            fail "$name shows fb0" "the fbdev session is not fb0's picture: $result"
    fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    PIDS=()
}

# restart_agent ARGS: the board's init restarts the agent with these extra flags (the last
# --screen wins); waits for its next "listening on" line.
restart_agent() {
    local before
    before=$(serial | grep -c 'INFO *listening on' || true)
    board_cmd "echo '$1' >/run/thinshadow.args; kill \$(cat /run/thinshadow.pid)" >/dev/null
    wait_for 60 bash -c "[ \$(tr -d '\r' <'$BOARD_LOG' | grep -c 'INFO *listening on') -gt $before ]"
}

# The agent the board started (its first RSA key takes a while) listens before it is replaced.
wait_for 90 bash -c "tr -d '\r' <'$BOARD_LOG' | grep -q 'INFO *listening on'" ||
    { fail "boot" "the board's agent never listened"; exit 1; }
# The shipped --screen auto, started while only the console is on the CRTC (sessions start at
# once for this check: the consent flow is test-board.sh's).
n0=$(serial | wc -l)
restart_agent "--consent-timeout-auto 0" || fail "restart" "no new listening line"
# The restarted agent's own choice (the board's first agent said the same before).
if serial | tail -n +"$((n0 + 1))" | grep 'screen auto: fbdev:/dev/fb0' >/dev/null; then
    pass "auto before the demo" "$(serial | tail -n +"$((n0 + 1))" | grep -o 'screen auto: fbdev.*' | tail -n 1)"
else
    fail "auto before the demo" "$(serial | grep -E 'screen auto' | tail -n 2 | tr '\n' '|')"
fi

# fb0 gets a known picture while it is still what is scanned out (checked on the screendump);
# the console is unbound from fb0 first, so it does not draw over it. (The 32-bpp picture is for
# virtio-gpu's fb0.)
if ((!rgb565)); then
    # shellcheck disable=SC2016 # expanded in the guest
    board_cmd 'for v in /sys/class/vtconsole/vtcon*; do grep -q "frame buffer" $v/name && echo 0 >$v/bind; done; true' >/dev/null
    board_cmd -t 60 "dd if=/usr/share/thinshadow-test/pattern.xrgb of=/dev/fb0 bs=65536 2>/dev/null" >/dev/null
    shown() { board_screendump "$work/fb0.png" && result=$("$PY" "$BOARD/pattern.py" check "$W" "$H" "$work/fb0.png"); }
    # (fbdev emulation flushes to the scanout a little later: look again for a while)
    if wait_for 10 shown; then
        pass "fb0 picture" "the screendump shows it: $result"
    else
        fail "fb0 picture" "${result:-no screendump}"
    fi
fi

# Then a DRM master takes the display; it could not if the agent held the master lock.
board_cmd 'kmsdemo '"$demo_args"' >/tmp/kmsdemo.log 2>&1 & sleep 2; cat /tmp/kmsdemo.log' | grep -q 'showing A' &&
    pass "demo" "kmsdemo is DRM master: $(board_cmd 'head -n 1 /tmp/kmsdemo.log')" ||
    { fail "demo" "kmsdemo did not start: $(board_cmd 'cat /tmp/kmsdemo.log' | tr '\n' '|')"; exit 1; }

# The same agent, not restarted, looks again when the admin connects and mirrors the demo.
ended_before=$(serial | grep -c 'session ended after' || true)
session auto match
# kmsdemo's cursor plane (a 12x18 image, moved during the session) reached the admin as RDP
# pointer updates: its shape, then where the local user moved it. (cirrus has no cursor plane.)
if ((!rgb565)); then
    session_ended() { [ "$(serial | grep -c 'session ended after' || true)" -gt "$ended_before" ]; }
    wait_for 15 session_ended || true
    ended=$(serial | grep 'session ended after' | tail -n 1)
    pointer_updates=$(sed -n 's/.* \([0-9][0-9]*\) pointer updates.*/\1/p' <<<"$ended")
    if serial | grep "pointer: the cursor plane's 12x18 image is the client's pointer" >/dev/null && ((${pointer_updates:-0} >= 2)); then
        pass "auto pointer" "$(serial | grep -o "pointer: the cursor plane's.*" | tail -n 1); ${pointer_updates} pointer updates; $(board_cmd 'grep cursor /tmp/kmsdemo.log' | tr '\n' '|')"
    else
        fail "auto pointer" "${pointer_updates:-no} pointer updates: ${ended#*; }; $(serial | grep -E 'pointer|cursor plane' | tail -n 4 | tr '\n' '|'); $(board_cmd 'grep cursor /tmp/kmsdemo.log' | tr '\n' '|')"
    fi
fi
if serial | grep 'screen auto: now kms:' >/dev/null; then
    pass "auto follows the master" "$(serial | grep -o 'screen auto: now kms:.*' | tail -n 1)"
else
    fail "auto follows the master" "$(serial | grep -E 'screen auto' | tail -n 3 | tr '\n' '|')"
fi
# The framebuffer prompt cannot be seen under a DRM master: the log says so.
if serial | grep 'local prompt: the screen is now a DRM master' >/dev/null; then
    pass "prompt under KMS" "$(serial | grep -o 'local prompt: the screen is now a DRM master.*' | tail -n 1)"
else
    fail "prompt under KMS" "no warning that the fb0 box is hidden: $(serial | grep 'local prompt' | tail -n 2 | tr '\n' '|')"
fi

if ((rgb565)); then
    # What the agent read was the demo's 16-bpp framebuffer (not fbdev's emulation of it).
    if serial | grep 'screen kms:[^ ]* [0-9]*x[0-9]* RGB565' >/dev/null; then
        pass "auto reads RGB565" "$(serial | grep -o 'screen kms:[^ ]* [0-9]*x[0-9]* RGB565.*' | tail -n 1)"
    else
        fail "auto reads RGB565" "$(serial | grep -E 'screen kms:' | tail -n 2 | tr '\n' '|')"
    fi
    # The RGB565 run ends here: fb0's picture and Weston are the default run's.
    exit
fi

# fbdev:/dev/fb0 is the gap the KMS source closes: fb0 is not what is scanned out.
# (No local prompt: its indicator would be drawn onto fb0 over the picture.)
restart_agent "--consent-timeout-auto 0 --local-prompt off --screen fbdev:/dev/fb0" || fail "restart" "no new listening line"
session fbdev differ

# --- A real compositor: Weston 10 as DRM master, the agent with the shipped --screen auto ---
# The demo goes first: Weston's direct launcher wants the master a DRM node's first opener gets.
# shellcheck disable=SC2016 # expanded in the guest
board_cmd 'kill $(pidof kmsdemo) 2>/dev/null; i=0; while pidof kmsdemo >/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done; ! pidof kmsdemo' >/dev/null ||
    fail "demo gone" "kmsdemo still runs"
# The agent before Weston: its uinput keyboard must exist when Weston looks for keyboards.
n0=$(serial | wc -l)
restart_agent "--consent-timeout-auto 0" || fail "restart" "no new listening line"
rc=0
# (weston-board waits up to twice WESTON_TIMEOUT: within board_cmd's, so its own reason shows)
out=$(board_cmd -t 200 'WESTON_TIMEOUT=90 weston-board start') || rc=$?
if ((rc == 0)) && grep -q 'is DRM master' <<<"$out"; then
    pass "weston" "$(tr '\n' ' ' <<<"$out")"
    weston_up=1
else
    fail "weston" "rc $rc: $(tr '\n' '|' <<<"$out"); $(board_cmd 'tail -n 8 /tmp/weston.log' | tr '\n' '|')"
    weston_up=0
fi
# What Weston found: the launcher, the keyboards (tagged by hand: no udevd), the cursor plane.
board_cmd "grep -E 'launcher|tagged by udev|cursor planes|shadow framebuffer' /tmp/weston.log" | sed 's/^/  weston.log: /'
if ((weston_up)); then
    # The client's frame is on screen and still (so a comparison can be exact).
    still() {
        board_screendump "$work/weston-1.png" && sleep 2 && board_screendump "$work/weston-2.png" &&
            "$PY" "$PIX" compare "$work/weston-1.png" "$work/weston-2.png" >/dev/null
    }
    colours=0
    if wait_for 20 still && colours=$("$PY" -c 'import sys; from PIL import Image; print(len(set(Image.open(sys.argv[1]).convert("RGB").getdata())))' "$work/weston-1.png") && ((colours > 100)); then
        pass "weston picture" "still for 2 s, $colours colours (simple-shm's window on kiosk-shell's black)"
    else
        fail "weston picture" "not still, or not the client's ($colours colours)"
    fi
    # The admin's Caps Lock reaches Weston: libinput hands it to Weston's xkb state, and Weston
    # sets the Caps Lock LED of its keyboards, ours included.
    # shellcheck disable=SC2016 # expanded in the guest
    caps() { board_cmd 'for l in /sys/class/leds/*::capslock; do echo "$(cat $l/device/name): $(cat $l/brightness)"; done' | tr '\n' '|'; }
    # shellcheck disable=SC2317 # session calls it (during_NAME)
    during_weston() {
        local before
        before=$(caps)
        DISPLAY=$DPY timeout 10 xdotool windowfocus --sync "$WIN" >/dev/null 2>&1 ||
            DISPLAY=$DPY timeout 10 xdotool windowfocus "$WIN" >/dev/null 2>&1 || true
        sleep 0.3
        DISPLAY=$DPY timeout 10 xdotool key --delay 80 Caps_Lock >/dev/null 2>&1 || true
        lit() { caps | grep -q 'thinshadow keyboard: [1-9]'; }
        if grep -q 'thinshadow keyboard: 0' <<<"$before" && wait_for 15 lit; then
            pass "weston typing" "Caps Lock from the admin: LEDs $before then $(caps)"
        else
            fail "weston typing" "LEDs $before then $(caps)"
        fi
    }
    session weston same
    if serial | tail -n +"$((n0 + 1))" | grep 'screen auto: now kms:' >/dev/null; then
        pass "weston auto" "$(serial | tail -n +"$((n0 + 1))" | grep -o 'screen auto: now kms:.*' | tail -n 1)"
    else
        fail "weston auto" "$(serial | tail -n +"$((n0 + 1))" | grep -E 'screen auto' | tail -n 3 | tr '\n' '|')"
    fi
    # ...and it is Weston that sets them, not the VT's keyboard handler: with Weston stopped, Caps
    # Lock on the board's own keyboard (QMP) leaves them alone; once it runs again it reads the key.
    # (Not during the session: there the agent may tap Caps Lock itself to match the admin's lock
    # state, seeing the LED stay dark.)
    before=$(caps)
    # shellcheck disable=SC2016 # expanded in the guest
    board_cmd 'kill -STOP $(pidof weston)' >/dev/null
    board_qmp '{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"caps_lock"}]}}' >/dev/null
    sleep 2
    stopped=$(caps)
    # shellcheck disable=SC2016 # expanded in the guest
    board_cmd 'kill -CONT $(pidof weston)' >/dev/null
    dark() { caps | grep -q 'thinshadow keyboard: 0'; }
    if [[ $stopped == "$before" ]] && grep -q 'thinshadow keyboard: [1-9]' <<<"$before" && wait_for 15 dark; then
        pass "weston sets the LEDs" "local Caps Lock: $before, Weston stopped: $stopped, running again: $(caps)"
    else
        fail "weston sets the LEDs" "local Caps Lock: $before, Weston stopped: $stopped, running again: $(caps)"
    fi
    board_cmd 'weston-board stop' >/dev/null || fail "weston stop" "weston did not stop"
fi
