# shellcheck shell=bash
# Sourced by scripts/e2e-freerdp.sh (thinshadow only): the access policy against the real
# xfreerdp 2.11. A second server with the shipped defaults (allow-auto, 30 s to answer) and a
# short allow-by-request timeout; the local user answers with the CLI on its control socket.
# Each refusal must reach the client as error info: xfreerdp exits with its code (DESIGN.md:
# 0x7 SERVER_DENIED_CONNECTION -> 7, 0xB RPC_INITIATED_DISCONNECT_BYUSER -> 11); a dropped
# socket without one is 131.

P_STATE="$T/policy-state"
P_CTL="$T/policy.sock"
P_PORT="$("$PY" "$PIX" freeport)"
P_LOG="$T/policy-server.log"
mkdir -p "$P_STATE"
start policy-server $((DEADLINE + 10)) "$BIN" serve --listen "127.0.0.1:$P_PORT" --screen "xwd:$SRC_FB" \
    --state-dir "$P_STATE" --control "$P_CTL" --consent-timeout-request 3
P_PID=$LAST_PID

p_up() { kill -0 "$P_PID" 2>/dev/null; }
p_ready() { { port_listening "$P_PORT" && [ -S "$P_CTL" ]; } || ! p_up; }
ctl() { timeout 10 "$BIN" "$@" --control "$P_CTL" >>"$T/policy-ctl.log" 2>&1; }
# Audit lines of one event so far, e.g. p_count consent-asked.
p_count() { grep -c "\"event\":\"$1\"" "$P_LOG" 2>/dev/null || true; }
p_more() { [ "$(p_count "$1")" -gt "$2" ]; }

P_USER="" P_PASS=""
p_creds() {
    local json
    json="$(timeout 15 "$BIN" creds --state-dir "$P_STATE" --json 2>/dev/null)" || return 1
    P_USER="$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["user"])' "$json")"
    P_PASS="$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["password"])' "$json")"
}

# p_client NAME: xfreerdp (NLA) to the policy server in the background; its pid in P_CPID.
p_client() {
    "${CLIENT_ENV[@]}" timeout --kill-after=3 60 xfreerdp "/v:127.0.0.1:$P_PORT" "/u:$P_USER" "/p:$P_PASS" \
        "${CLIENT_FLAGS[@]}" /sec:nla >"$T/$1.log" 2>&1 &
    P_CPID=$!
    PIDS+=("$P_CPID")
}
# p_exit PID SECS: waits for the client to end; P_RC is its exit status or "still running".
p_exit() {
    P_RC="still running"
    wait_for "$2" bash -c "! kill -0 $1 2>/dev/null" || return 1
    P_RC=0
    wait "$1" 2>/dev/null || P_RC=$?
}
# p_expect NAME WANT [EVENT]: the client exits WANT within 15 s; REASON says what happened and
# shows the last audit line of EVENT (default ended).
p_expect() {
    p_exit "$P_CPID" 15 || true
    REASON="xfreerdp exit $P_RC (want $2); $(grep -o "\"event\":\"${3:-ended}\"[^}]*" "$P_LOG" | tail -n 1)"
    [ "$P_RC" = "$2" ] || return 1
    p_up || { REASON="the server died; $REASON"; return 1; }
}

case_h() { # allow-auto: the local user rejects -> 7
    local n
    n=$(p_count consent-asked)
    p_client policy-reject
    wait_for 30 p_more consent-asked "$n" || { REASON="no consent-asked audit line within 30 s"; return 1; }
    ctl reject || { REASON="thinshadow reject failed: $(tail -n 1 "$T/policy-ctl.log")"; return 1; }
    p_expect policy-reject 7
}

case_i() { # accepted session, then the local user terminates -> 11
    local n s
    n=$(p_count consent-asked) s=$(p_count session-started)
    p_client policy-terminate
    wait_for 30 p_more consent-asked "$n" || { REASON="no consent-asked audit line within 30 s"; return 1; }
    ctl accept || { REASON="thinshadow accept failed: $(tail -n 1 "$T/policy-ctl.log")"; return 1; }
    wait_for 10 p_more session-started "$s" || { REASON="no session-started after accept"; return 1; }
    ctl terminate || { REASON="thinshadow terminate failed: $(tail -n 1 "$T/policy-ctl.log")"; return 1; }
    p_expect policy-terminate 11
}

case_j() { # Deny refuses a logged-in admin -> 7, the local user is not asked
    local n rc=0
    n=$(p_count consent-asked)
    ctl mode management deny || { REASON="thinshadow mode management deny failed: $(tail -n 1 "$T/policy-ctl.log")"; return 1; }
    p_client policy-deny
    p_expect policy-deny 7 || rc=1
    p_more consent-asked "$n" && { REASON="the local user was asked under Deny; $REASON"; rc=1; }
    ctl mode management allow-auto || { REASON="could not set allow-auto again; $REASON"; rc=1; }
    return "$rc"
}

case_k() { # allow-by-request, no answer in 3 s -> 7
    local n rc=0
    n=$(p_count consent-asked)
    ctl mode management allow-by-request || { REASON="thinshadow mode management allow-by-request failed"; return 1; }
    p_client policy-timeout
    wait_for 30 p_more consent-asked "$n" || { REASON="no consent-asked audit line within 30 s"; rc=1; }
    if [ "$rc" = 0 ]; then
        p_expect policy-timeout 7 || rc=1
        grep -q '"event":"consent-answered".*"by":"timeout"' "$P_LOG" || { REASON="no timeout answer audited; $REASON"; rc=1; }
    fi
    ctl mode management allow-auto || { REASON="could not set allow-auto again; $REASON"; rc=1; }
    return "$rc"
}

case_l() { # a second admin while one is in session -> 7; the first one stays
    local n s r first rc=0
    n=$(p_count consent-asked) s=$(p_count session-started)
    p_client policy-first
    first=$P_CPID
    wait_for 30 p_more consent-asked "$n" && ctl accept && wait_for 10 p_more session-started "$s" ||
        { REASON="the first admin's session did not start"; return 1; }
    r=$(p_count refused)
    p_client policy-second
    p_expect policy-second 7 refused || rc=1
    p_more refused "$r" || { REASON="no refused audit line; $REASON"; rc=1; }
    kill -0 "$first" 2>/dev/null || { REASON="the first admin's client ended too; $REASON"; rc=1; }
    ctl terminate || true
    P_CPID=$first
    p_exit "$first" 15 || true
    return "$rc"
}

if ! wait_for 30 p_ready || ! p_up || ! p_creds; then
    REASON="the policy server did not come up: $(tail -n 3 "$P_LOG" | tr '\n' '|')"
    result 1 "(h-l) access policy server"
else
    close_session
    run_case "(h) allow-auto, the local user rejects: xfreerdp exits 7" case_h
    run_case "(i) the local user terminates: xfreerdp exits 11" case_i
    run_case "(j) Deny refuses the admin: xfreerdp exits 7" case_j
    run_case "(k) allow-by-request, no answer: xfreerdp exits 7" case_k
    run_case "(l) a second admin while one is in session: xfreerdp exits 7" case_l
fi
stop_pid "$P_PID"
