#!/usr/bin/env bash
# Starts the local runner (`webhooks-local serve`) briefly against the LocalStack on
# $LOCALSTACK_PORT, on a free port, checks with scripts/loopback-check.sh that it listens on
# loopback only, and stops it again by its PID (also on failure), with its throwaway stack.
#
#   scripts/loopback-runner-check.sh [BIN [Key=Value ...]]
#
# BIN defaults to target/debug/webhooks-local; Key=Value pairs override infra/data.yaml's
# parameters for the throwaway stack (its defaults must satisfy the runner's cold-start queue
# checks with the default RETRY_SCHEDULE, as in AWS).
#
# Env: LOCALSTACK_PORT (default 45670), as for scripts/localstack.sh; LocalStack must be running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${1:-target/debug/webhooks-local}"
[[ $# -gt 0 ]] && shift
LS_PORT="${LOCALSTACK_PORT:-45670}"
STACK="loopback-check-$$"
LOG="$(mktemp)"
runner=""

log() { echo "loopback-runner-check.sh: $*" >&2; }
[[ -x "$BIN" ]] || { log "no runner binary $BIN (cargo build --bins)"; exit 1; }

cleanup() {
    if [[ -n "$runner" ]] && kill -0 "$runner" 2>/dev/null; then
        kill "$runner" 2>/dev/null || true
        wait "$runner" 2>/dev/null || true
    fi
    scripts/localstack.sh destroy "$STACK" >/dev/null 2>&1 || true
    rm -f "$LOG"
}
trap cleanup EXIT

# The runner's environment, as in the README's "Run it locally": endpoint + the stack's outputs.
while IFS= read -r line; do export "${line?}"; done < <(
    scripts/localstack.sh env "$LS_PORT"
    scripts/localstack.sh provision "$STACK" "$@"
)

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$BIN" serve --port "$port" >"$LOG" 2>&1 &
runner=$!

# Ready when its API port accepts a connection (poll with a deadline).
deadline=$(( SECONDS + 30 ))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$runner" 2>/dev/null; then
        cat "$LOG" >&2
        log "the runner exited before it listened on port $port"
        exit 1
    fi
    if (( SECONDS >= deadline )); then
        cat "$LOG" >&2
        log "the runner did not listen on port $port within 30 s"
        exit 1
    fi
    sleep 0.2
done
scripts/loopback-check.sh "$runner"
