#!/usr/bin/env bash
# Browser test of the web console (/console): Debian's headless Chromium driven by playwright-core
# (tests/browser). Needs a running LocalStack on $LOCALSTACK_PORT (the caller starts and stops it).
#
# It provisions a fresh stack, starts `webhooks-local serve` on a free port (stopped by PID on
# exit, also on failure), creates an API key for tenant `console`, and runs
# tests/browser/console.test.mjs, which serves its own receiver on 127.0.0.1 and saves
# screenshots to $SCREENSHOT_DIR (default docs/console). Last line: `browser: N passed, M failed`.
#
#   LOCALSTACK_PORT=45685 scripts/browser-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
: "${LOCALSTACK_PORT:?set LOCALSTACK_PORT to the port of a running LocalStack (scripts/localstack.sh start PORT)}"
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$ROOT/docs/console}"
CHROMIUM=/usr/bin/chromium

log() { echo "browser-test.sh: $*" >&2; }

# 1. Chromium from Debian (Playwright's own browser download cannot work here).
if [[ ! -x "$CHROMIUM" ]]; then
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    log "installing chromium (apt)"
    if ! apt-cache show chromium >/dev/null 2>&1; then $SUDO apt-get update -qq; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
"$CHROMIUM" --version 2>/dev/null | head -n 1 >&2

# 2. playwright-core, pinned by tests/browser/package-lock.json.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

# 3. A LocalStack the caller started.
curl -sf "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health" >/dev/null \
    || { log "no LocalStack on port $LOCALSTACK_PORT (start one: scripts/localstack.sh start $LOCALSTACK_PORT)"; exit 1; }

# 4. A fresh stack and the settings of a local run; a short schedule: 2 attempts, 1 s apart.
STACK="console-$RANDOM"
log "provisioning stack $STACK"
while IFS= read -r line; do if [[ "$line" == *=* ]]; then export "${line?}"; fi; done \
    < <(scripts/localstack.sh env "$LOCALSTACK_PORT"; scripts/localstack.sh provision "$STACK" DeliveryMaxReceiveCount=12)
# Health written at every attempt: the list shows exact failure counts (production: once a minute).
export RETRY_SCHEDULE=1 ALLOW_HTTP=true ALLOW_PRIVATE_TARGETS=true SUBSCRIPTION_CACHE_TTL_MS=0 HEALTH_FLUSH_SECS=0
[[ -n "${EVENTS_QUEUE_URL:-}" ]] || { log "provisioning $STACK printed no EVENTS_QUEUE_URL"; exit 1; }

# 5. The local runner (API + pollers) in the background; stopped by its PID whatever happens.
cargo build --locked -q -p runner --bin webhooks-local
API_PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
SERVER_LOG="$(mktemp -t webhooks-console-XXXXXX.log)"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if (( rc != 0 )); then log "failed (exit $rc); server log tail:"; tail -n 40 "$SERVER_LOG" >&2 || true; fi
    rm -f "$SERVER_LOG"
    exit "$rc"
}
trap cleanup EXIT
target/debug/webhooks-local serve --port "$API_PORT" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$API_PORT/console/" >/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "webhooks-local exited during startup"; exit 1; }
    sleep 0.5
done
curl -sf "http://127.0.0.1:$API_PORT/console/" >/dev/null || { log "webhooks-local not answering on port $API_PORT"; exit 1; }

# 6. API keys (printed once on stdout; passed to the test in the environment, never printed): the
#    customer's, for the console, and the platform's, which publishes the events.
CONSOLE_API_KEY="$(target/debug/webhooks-local create-key --tenant console \
    --scopes webhooks:read,webhooks:write,webhooks:delete,webhooks:admin 2>/dev/null)"
CONSOLE_PUBLISH_KEY="$(target/debug/webhooks-local create-key --tenant console --scopes events:publish 2>/dev/null)"
export CONSOLE_API_KEY CONSOLE_PUBLISH_KEY CONSOLE_URL="http://127.0.0.1:$API_PORT" CHROMIUM

# 7. The browser test.
mkdir -p "$SCREENSHOT_DIR"
node tests/browser/console.test.mjs
