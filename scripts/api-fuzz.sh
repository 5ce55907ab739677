#!/usr/bin/env bash
# Property-based fuzzing of the management API from its OpenAPI document (shared/data/openapi.json)
# with Schemathesis (pinned, installed into .tools/fuzz-venv): examples, coverage, fuzzed inputs
# and stateful sequences for every operation, against the real local runner on a LocalStack stack
# of its own. Fails on any server error (5xx) and any response the document does not describe
# (status code, content type, headers, body schema).
#
#   scripts/localstack.sh start 45683
#   LOCALSTACK_PORT=45683 scripts/api-fuzz.sh
#   scripts/localstack.sh stop 45683
#
# Env: LOCALSTACK_PORT    (required) a LocalStack started by scripts/localstack.sh
#      FUZZ_API_PORT      first port tried for the runner's API (default 45700; next free one used)
#      FUZZ_MAX_EXAMPLES  test cases per operation and phase (default 50: about 1 min of fuzzing)
#      FUZZ_SEED          Hypothesis seed (default 20261122, fixed so that runs repeat)
#      FUZZ_CHECKS        Schemathesis checks (default: the five conformance checks below)
#      FUZZ_PYTHON        interpreter (>= 3.11) for the venv (default python3, else pyenv 3.13)
# Output: target/api-fuzz/ (JUnit + JSON reports, the runner's log, the generated config), and a
# last line `api-fuzz: N passed, M failed` (N, M: Schemathesis' test suites, one per operation
# plus the stateful one).
#
# Nothing leaves 127.0.0.1: the runner's HTTP(S) proxy is a local sink that logs and drops every
# request, so the deliveries that fuzzed subscriptions cause (the /test route, the delivery
# pollers) fail at once on loopback instead of reaching for public hosts (checked before fuzzing);
# ALLOW_PRIVATE_TARGETS=false refuses private targets.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCHEMATHESIS_VERSION="4.32.5"
# The exact set that was tested with it (Python 3.11 and 3.13); newer ones may change generation.
CONSTRAINTS="schemathesis==$SCHEMATHESIS_VERSION
anyio==4.16.0
certifi==2026.10.18
charset-normalizer==3.5.2
click==8.5.1
graphql-core==3.3.2
harfile==0.6.0
hypothesis==6.170.15
hypothesis-graphql==0.13.5
idna==3.20
iniconfig==2.3.1
jsonschema_rs==0.60.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
packaging==26.3
pluggy==1.7.0
Pygments==2.21.0
pyrate-limiter==4.5.1
pytest==9.2.0
PyYAML==6.0.3
requests==2.34.2
rich==15.0.0
sortedcontainers==2.4.0
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9"
VENV=.tools/fuzz-venv
SPEC=shared/data/openapi.json
OUT=target/api-fuzz
BIN=target/debug/webhooks-local
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-50}"
SEED="${FUZZ_SEED:-20261122}"
READY_TIMEOUT=60

log() { echo "api-fuzz: $*" >&2; }
die() { log "$*"; exit 1; }

[[ -n "${LOCALSTACK_PORT:-}" ]] || die "set LOCALSTACK_PORT to a running LocalStack (scripts/localstack.sh start PORT)"
export LOCALSTACK_PORT

RUNNER_PID=""
SINK_PID=""
STACK=""
# shellcheck disable=SC2317  # (both run from the EXIT trap)
stop_pid() {   # stop one process we started, by its PID: TERM, then KILL after 5 s
    local pid=$1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    stop_pid "$RUNNER_PID"
    stop_pid "$SINK_PID"
    if (( rc != 0 )) && [[ -s "$OUT/runner.log" ]]; then
        # The server's side of a failure: its errors and panics, else the log's last lines.
        if grep -qE 'ERROR .*shared::api|panicked' "$OUT/runner.log"; then
            log "server errors and panics in the runner's log ($OUT/runner.log):"
            grep -E -A1 'ERROR .*shared::api|panicked' "$OUT/runner.log" | tail -n 20 | cut -c1-600 >&2
        else
            log "last lines of the runner's log ($OUT/runner.log):"
            tail -n 10 "$OUT/runner.log" | cut -c1-400 >&2
        fi
    fi
    if [[ -n "$STACK" ]]; then
        scripts/localstack.sh destroy "$STACK" >/dev/null 2>&1 || log "could not delete stack $STACK (harmless)"
    fi
    exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. Schemathesis (pinned)
py_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; }
find_python() {
    local cand
    if [[ -n "${FUZZ_PYTHON:-}" ]]; then
        py_ok "$FUZZ_PYTHON" && { echo "$FUZZ_PYTHON"; return 0; }
        return 1
    fi
    for cand in python3 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3; do
        if command -v "$cand" >/dev/null 2>&1 && py_ok "$cand" && "$cand" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}
installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true
}

if [[ "$(installed_version)" != "$SCHEMATHESIS_VERSION" || ! -x "$VENV/bin/schemathesis" ]]; then
    py="$(find_python)" || die "needs Python >= 3.11 with venv (tried \$FUZZ_PYTHON, python3, pyenv 3.13)"
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV (python: $py)"
    rm -rf "$VENV"
    mkdir -p .tools
    "$py" -m venv "$VENV"
    printf '%s\n' "$CONSTRAINTS" > "$VENV/constraints.txt"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c "$VENV/constraints.txt" "schemathesis==$SCHEMATHESIS_VERSION"
    [[ "$(installed_version)" == "$SCHEMATHESIS_VERSION" ]] || die "schemathesis $SCHEMATHESIS_VERSION did not install"
fi

# ---------------------------------------------------------------- 2. a stack of its own
STACK="fuzz-$RANDOM"
mkdir -p "$OUT"
rm -rf "${OUT:?}"/*
log "provisioning stack $STACK on LocalStack port $LOCALSTACK_PORT"
ENV_LINES="$(scripts/localstack.sh provision "$STACK" DeliveryMaxReceiveCount=13)"
ENV_LINES+=$'\n'"$(scripts/localstack.sh env "$LOCALSTACK_PORT")"
while IFS= read -r line; do
    if [[ -n "$line" ]]; then export "${line?}"; fi
done <<<"$ENV_LINES"
export RETRY_SCHEDULE=1,1 ALLOW_HTTP=true ALLOW_PRIVATE_TARGETS=false

# ---------------------------------------------------------------- 3. the runner
# Free = nothing listens there and no socket (e.g. an outgoing connection, these ports being in the
# ephemeral range) holds it as its local port.
port_free() {
    if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]]; then
        return 1
    fi
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_port() {
    local p=$1
    while ! port_free "$p"; do
        p=$((p + 1))
        (( p < $1 + 100 )) || return 1
    done
    echo "$p"
}

log "building the local runner"
cargo build --locked -p runner --bin webhooks-local

# The runner's HTTP(S) proxy: a sink on an OS-chosen loopback port that logs each request line
# (`CONNECT host:443 ...`) and closes the connection, so every delivery attempt fails at once,
# on 127.0.0.1. The delivery client ignores ambient proxies but takes DELIVERY_PROXY; the check after
# the seed below makes sure it still does before anything is fuzzed.
"$VENV/bin/python" - "$OUT/proxy.port" "$OUT/proxy.log" <<'PY' &
import os, socket, sys
port_file, log_file = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(128)
with open(log_file, "a", buffering=1) as log:
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.replace(port_file + ".tmp", port_file)
    while True:
        conn, _ = srv.accept()
        conn.settimeout(2)
        try:
            line = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
        except OSError:
            line = "(nothing received)"
        log.write(line + "\n")
        conn.close()
PY
SINK_PID=$!
for _ in $(seq 100); do [[ -s "$OUT/proxy.port" ]] && break; sleep 0.1; done
[[ -s "$OUT/proxy.port" ]] || die "the proxy sink did not start"
PROXY="http://127.0.0.1:$(cat "$OUT/proxy.port")"

# Starts the runner on a free port from $1; 0 = ready, 1 = the port was taken meanwhile.
start_runner() {
    PORT="$(free_port "$1")" || die "no free port from $1"
    BASE_URL="http://127.0.0.1:$PORT"
    log "starting $BIN serve --port $PORT"
    DELIVERY_PROXY="$PROXY" HTTPS_PROXY="$PROXY" HTTP_PROXY="$PROXY" ALL_PROXY="$PROXY" NO_PROXY="127.0.0.1,localhost" NO_COLOR=1 \
        "$BIN" serve --port "$PORT" >"$OUT/runner.log" 2>&1 &
    RUNNER_PID=$!
    local deadline=$((SECONDS + READY_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 2 "$BASE_URL/v1/openapi.json" 2>/dev/null; do
        if ! kill -0 "$RUNNER_PID" 2>/dev/null; then
            wait "$RUNNER_PID" 2>/dev/null || true
            RUNNER_PID=""
            grep -q 'cannot listen' "$OUT/runner.log" && return 1
            die "the runner exited before it was ready"
        fi
        (( SECONDS < deadline )) || die "the runner was not ready on $BASE_URL within ${READY_TIMEOUT}s"
        sleep 0.5
    done
}

next_port="${FUZZ_API_PORT:-45700}"
for try in 1 2 3 4 5; do
    start_runner "$next_port" && break
    log "port $PORT was taken meanwhile; trying another"
    next_port=$((PORT + 2))
    (( try < 5 )) || die "could not start the runner"
done
log "runner ready on $BASE_URL (pid $RUNNER_PID)"

KEY="$("$BIN" create-key --tenant fuzz --scopes webhooks:read,webhooks:write,webhooks:delete,webhooks:admin 2>>"$OUT/runner.log")"
[[ "$KEY" == whk_* ]] || die "create-key printed no key"
# The fuzzer harvests ids from responses (GET /v1/api-keys lists this very key): a hook keeps
# DELETE /v1/api-keys/{id} from revoking it, so the rest of the run stays authenticated.
KEY_ID="$(curl -fsS --max-time 10 -H "Authorization: Bearer $KEY" "$BASE_URL/v1/api-keys" \
    | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["id"])')" \
    || die "cannot read the fuzz key's id from GET /v1/api-keys"

# Seed data: a subscription and a (failed: see the proxy above) test delivery, whose id the
# delivery routes get half of the time. Nothing else in the run creates a delivery id the fuzzer
# could find, so without it GET /v1/deliveries/{id} and friends would only ever answer 404.
json_field() { "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
api_post() {
    curl -fsS --max-time 30 -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        --data "$2" "$BASE_URL$1"
}
SEED_SUB="$(api_post /v1/subscriptions '{"url":"https://example.com/api-fuzz-seed","events":["*"]}' | json_field id)" \
    || die "cannot create the seed subscription"
SEED_DLV="$(api_post "/v1/subscriptions/$SEED_SUB/test" '{}' | json_field delivery_id)" \
    || die "cannot create the seed delivery"
log "seed: subscription $SEED_SUB, delivery $SEED_DLV"
grep -q '^CONNECT example.com:443 ' "$OUT/proxy.log" \
    || die "the seed's test delivery did not go through the local proxy sink: refusing to fuzz (deliveries could leave 127.0.0.1)"

cat >"$OUT/hooks.py" <<'HOOKS'
import os
import schemathesis

PROTECTED = os.environ["FUZZ_PROTECTED_KEY_ID"]


@schemathesis.hook
def before_call(context, case, **kwargs):
    # Never revoke the key the fuzzer authenticates with; any other id (generated, or harvested
    # from keys the fuzzer created) goes through unchanged.
    if case.method.upper() == "DELETE" and case.path.startswith("/v1/api-keys/"):
        if (case.path_parameters or {}).get("id") == PROTECTED:
            case.path_parameters["id"] = "key_protected_by_api_fuzz"
HOOKS

cat >"$OUT/schemathesis.toml" <<TOML
# Written by scripts/api-fuzz.sh for one run.
hooks = "$ROOT/$OUT/hooks.py"

[cache]
enabled = false

[dictionaries.seed_delivery_ids]
values = ["$SEED_DLV"]

[[operations]]
include-path-regex = "^/v1/deliveries/"
parameters = { "path.id" = { dictionary = "seed_delivery_ids", probability = 0.5 } }

[warnings]
# A 401/403-only operation means the fuzz key stopped working: the run proved little.
fail-on = ["missing_auth"]
TOML

# ---------------------------------------------------------------- 4. fuzz
log "schemathesis $SCHEMATHESIS_VERSION: $SPEC against $BASE_URL (max examples $MAX_EXAMPLES, seed $SEED)"
set +e
FUZZ_PROTECTED_KEY_ID="$KEY_ID" HYPOTHESIS_STORAGE_DIRECTORY="$ROOT/$VENV/hypothesis" \
    "$VENV/bin/schemathesis" --config-file "$OUT/schemathesis.toml" run "$SPEC" \
    --url "$BASE_URL" \
    --header "Authorization: Bearer $KEY" \
    --checks "${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}" \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --generation-database none \
    --workers 1 \
    --request-timeout 30 \
    --no-color \
    --report junit,json --report-dir "$OUT" \
    --report-junit-path "$OUT/junit.xml" --report-json-path "$OUT/report.json"
RC=$?
set -e

# ---------------------------------------------------------------- 5. summary
# One line per run: the JUnit report's test cases (one per operation, plus the stateful run).
SUMMARY="$("$VENV/bin/python" - "$OUT/junit.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
passed = failed = 0
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is None:
        passed += 1
print(f"{passed} passed, {failed} failed")
PY
)" || SUMMARY="0 passed, 1 failed"
if (( RC != 0 )) && [[ "$SUMMARY" == *" 0 failed" ]]; then
    SUMMARY="${SUMMARY% 0 failed} 1 failed"   # e.g. a warning configured to fail, or a crash
fi
log "deliveries caught by the local proxy sink: $(wc -l <"$OUT/proxy.log") (see $OUT/proxy.log)"
echo "api-fuzz: $SUMMARY"
exit "$RC"
