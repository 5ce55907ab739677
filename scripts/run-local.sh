#!/usr/bin/env bash
# Runs the whole service on this machine: installs and starts LocalStack (SQS + DynamoDB),
# provisions the queues and tables from infra/data.yaml, creates a dev API key, and runs the local
# runner (API on http://127.0.0.1:$API_PORT + the fan-out and delivery pollers). Ctrl-C stops it
# all, LocalStack included.
#
#   scripts/run-local.sh            the handlers in the runner's process
#   scripts/run-local.sh --lambda   the release bootstraps of `sam build` as processes against
#                                   cargo-lambda's Lambda emulator, configured from
#                                   infra/template.yaml (builds them first: a few minutes)
#
# Env: API_PORT (default 3000), LOCALSTACK_PORT (default 45670), TENANT (default dev).
# Local-only settings: ALLOW_HTTP and ALLOW_PRIVATE_TARGETS are on, so subscriptions may point at
# http://127.0.0.1 receivers; the SAM template turns both off.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

API_PORT="${API_PORT:-3000}"
export LOCALSTACK_PORT="${LOCALSTACK_PORT:-45670}"
TENANT="${TENANT:-dev}"
LAMBDA=0
case "${1:-}" in
    "") ;;
    --lambda) LAMBDA=1 ;;
    *) echo "usage: scripts/run-local.sh [--lambda]" >&2; exit 2 ;;
esac

cargo build --locked -p runner --bin webhooks-local
if (( LAMBDA )); then
    scripts/sam.sh install
    scripts/sam.sh build
    .tools/venv/bin/python scripts/sam-translate.py infra/template.yaml > .aws-sam/template.translated.json
fi
scripts/localstack.sh setup
RUNNER_PID=""
stop_all() {
    if [[ -n "$RUNNER_PID" ]]; then kill "$RUNNER_PID" 2>/dev/null || true; fi
    scripts/localstack.sh stop "$LOCALSTACK_PORT" || true
}
trap stop_all EXIT
# The runner runs in the background (so it can be checked), where a script's children ignore
# SIGINT: Ctrl-C must end the script itself, whose EXIT trap then stops the runner and LocalStack.
trap 'exit 130' INT
trap 'exit 143' TERM
scripts/localstack.sh start "$LOCALSTACK_PORT" >/dev/null
# Nothing of this runs beyond loopback: LocalStack and DynamoDB Local (fenced by
# scripts/localstack.sh), and the runner (127.0.0.1) below.
scripts/loopback-check.sh "$(scripts/localstack.sh pid "$LOCALSTACK_PORT")"
# A short schedule for local use: 4 retries -> 5 attempts; the queue allows 5 + 10 receives (the
# receives beyond the attempts absorb infrastructure errors).
export RETRY_SCHEDULE="5,30,120,600"
ENV_FILE=.localstack/local.env
{
    scripts/localstack.sh env "$LOCALSTACK_PORT"
    scripts/localstack.sh provision webhooks-local DeliveryMaxReceiveCount=15
    echo "RETRY_SCHEDULE=$RETRY_SCHEDULE"
    echo "ALLOW_HTTP=true"
    echo "ALLOW_PRIVATE_TARGETS=true"
} > "$ENV_FILE"
while IFS= read -r line; do export "${line?}"; done < "$ENV_FILE"
KEY="$("$ROOT/target/debug/webhooks-local" create-key --tenant "$TENANT" 2>/dev/null)"

cat <<MSG

  Webhook service running locally
    Console:      http://127.0.0.1:$API_PORT/console/   (sign in with the API key below)
    API:          http://127.0.0.1:$API_PORT   (routes under /v1)
    API key:      $KEY   (tenant $TENANT, all scopes)
    Event queue:  $EVENTS_QUEUE_URL
    LocalStack:   $AWS_ENDPOINT_URL
  Try:
    curl -s -X POST http://127.0.0.1:$API_PORT/v1/subscriptions -H "Authorization: Bearer $KEY" \\
         -H 'Content-Type: application/json' -d '{"url":"http://127.0.0.1:9000/hook","events":["*"]}'
    set -a; . $ENV_FILE; set +a    # in another terminal: the same settings
    target/debug/webhooks-local publish '{"event_id":"e1","event_type":"project.created","tenant_id":"$TENANT","occurred_at":"2026-11-22T10:00:00Z","data":{}}'
  Ctrl-C stops everything.

MSG
SERVE=(serve --port "$API_PORT")
if (( LAMBDA )); then
    # The template's own environment, with this script's schedule as its RetrySchedule parameter
    # and the two local-only settings on top.
    SERVE+=(--lambda --parameter "RetrySchedule=$RETRY_SCHEDULE" --override ALLOW_HTTP=true --override ALLOW_PRIVATE_TARGETS=true)
    echo "  Lambda mode: the functions' logs are in target/lambda/local/"
fi
"$ROOT/target/debug/webhooks-local" "${SERVE[@]}" &
RUNNER_PID=$!
deadline=$(( SECONDS + 30 ))
until (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; do
    kill -0 "$RUNNER_PID" 2>/dev/null || { wait "$RUNNER_PID" || exit $?; exit 1; }
    (( SECONDS < deadline )) || { echo "run-local.sh: the runner does not listen on port $API_PORT" >&2; exit 1; }
    sleep 0.2
done
scripts/loopback-check.sh "$RUNNER_PID"
wait "$RUNNER_PID"
