#!/usr/bin/env bash
# End to end with aardwolf (PyPI, a Python RDP client with its own stack): its CredSSP wraps
# NTLM in SPNEGO as mstsc does, its MCS and share headers are off where Windows forgives them.
# Installs aardwolf into a venv under target/ the first time (needs PyPI and python3-venv).
#
# Usage: scripts/e2e-aardwolf.sh        Env: THINSHADOW_BIN (default target/debug/thinshadow),
#        AARDWOLF_VENV (default target/aardwolf-venv), AARDWOLF_REQUIRED=1 (fail, not skip, when
#        PyPI cannot be reached).
# Cases: (a) NLA over SPNEGO: its desktop buffer equals the served picture, (b) the same with
#        TLS security, (d) NLA asking for at most 16 bpp, (c) a wrong password: CredSSP refuses with STATUS_LOGON_FAILURE.
# Ends with "N passed, M failed"; non-zero exit when a case failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3
PIX=$HERE/e2e/pixels.py
BIN=${THINSHADOW_BIN:-$REPO/target/debug/thinshadow}
VENV=${AARDWOLF_VENV:-$REPO/target/aardwolf-venv}
# Pinned: the version these cases were written against.
AARDWOLF=aardwolf==0.2.16
W=1024 H=768

[[ -x $BIN ]] || { echo "no thinshadow binary at $BIN (cargo build)" >&2; exit 2; }
if ! "$VENV/bin/python" -c 'import aardwolf, PIL' 2>/dev/null; then
    echo "e2e-aardwolf: installing $AARDWOLF into $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    # pip trusts its own CA list (certifi); the system's is the one a TLS proxy's CA is in.
    if [[ -z ${PIP_CERT:-} && -r /etc/ssl/certs/ca-certificates.crt ]]; then
        export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
    fi
    if ! timeout 600 "$VENV/bin/pip" install -q --retries 2 "$AARDWOLF" pillow >"$VENV.log" 2>&1; then
        # No PyPI here (offline, or a TLS proxy whose CA the system store lacks): say so
        # plainly; AARDWOLF_REQUIRED=1 makes it a failure.
        echo "SKIP aardwolf: pip could not install $AARDWOLF: $(grep -m1 '^ERROR' "$VENV.log" || tail -n 1 "$VENV.log")"
        rm -rf "$VENV"
        [[ ${AARDWOLF_REQUIRED:-0} == 1 ]] && exit 1
        echo "0 passed, 0 failed, 4 skipped"
        exit 0
    fi
fi

LIMIT=300
# shellcheck source=SCRIPTDIR/lib/e2e-client.sh
. "$HERE/lib/e2e-client.sh"
e2e_begin aardwolf
# The served picture, on an Xvfb screen file the agent maps.
xvfb src "${W}x${H}"
SRC_DPY=$DPY SRC_FB=$FB
"$PY" "$PIX" gen "$T/pic.png" --variant 1 --size "${W}x${H}"
paint "$T/pic.png" || { echo "could not paint the source display" >&2; exit 2; }
serve_source

client() { # client SEC PASSWORD [--ref PIC]: the aardwolf client's one line; its exit code in RC
    RC=0
    OUT=$(timeout -k 3 60 "$VENV/bin/python" "$HERE/e2e/aardwolf_client.py" --port "$PORT" --user admin \
        --password "$2" --sec "$1" --width "$W" --height "$H" --timeout 20 "${@:3}" 2>"$T/aardwolf-$1.err") || RC=$?
}

client nla "$PASSWORD" --ref "$T/pic.png"
((RC == 0)) && pass "a nla" "SPNEGO+NTLM login, $OUT" || fail "a nla" "exit $RC: $OUT $(tail -n 1 "$T/aardwolf-nla.err")"
client tls "$PASSWORD" --ref "$T/pic.png"
((RC == 0)) && pass "b tls" "$OUT" || fail "b tls" "exit $RC: $OUT $(tail -n 1 "$T/aardwolf-tls.err")"
client nla "$PASSWORD" --ref "$T/pic.png" --bpp 16
((RC == 0)) && pass "d nla --bpp 16" "$OUT" || fail "d nla --bpp 16" "exit $RC: $OUT $(tail -n 1 "$T/aardwolf-nla.err")"
client nla "${PASSWORD}x"
if ((RC == 3)) && [[ $OUT == *0xc000006d* ]] && grep -q '"event":"login-failed"' "$T/agent.log"; then
    pass "c wrong password" "$OUT; login-failed audited"
else
    fail "c wrong password" "exit $RC: $OUT"
fi
