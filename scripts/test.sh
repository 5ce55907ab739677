#!/usr/bin/env bash
# Runs every test: unit, adapter and end-to-end (on a LocalStack this script installs, starts on
# its own port and stops again, also on failure), then the SAM template checks (sam validate --lint,
# cfn-lint's serverless rules, checkov), `sam build`, and the Lambda-mode tests on its bundles.
#
#   scripts/test.sh              everything
#   SKIP_SAM_BUILD=1 scripts/test.sh   skip the release build of the Lambda bundles (and the
#                                      Lambda-mode tests, which run them)
#
# Env: TEST_LOCALSTACK_PORT (default 45680).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PORT="${TEST_LOCALSTACK_PORT:-45680}"
export LOCALSTACK_PORT="$PORT"

step() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

# A full run needs ≈ 6 GB of disk (target/, LocalStack, SAM CLI, browser); say so up front
# rather than fail later with ENOSPC inside a linker.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
step "Disk: $((free_kb / 1024 / 1024)) GB free in $(pwd)"
if (( free_kb < 6 * 1024 * 1024 )); then
    echo "test.sh: warning: less than 6 GB free; the build may fail with 'No space left on device'" >&2
fi

step "LocalStack setup"
scripts/localstack.sh setup
step "LocalStack start on port $PORT"
trap 'scripts/localstack.sh stop "$PORT" || true' EXIT
scripts/localstack.sh start "$PORT"
while IFS= read -r line; do export "${line?}"; done < <(scripts/localstack.sh env "$PORT")

step "Loopback only: LocalStack and its DynamoDB Local"
scripts/loopback-check.sh "$(scripts/localstack.sh pid "$PORT")"

step "Interop verifiers (standardwebhooks from PyPI and npm)"
scripts/interop-setup.sh

step "cargo build (workspace binaries)"
# The operator test runs the runner binary itself; `cargo test` builds only test harnesses.
cargo build --workspace --locked --bins

step "Loopback only: the local runner (webhooks-local serve)"
scripts/loopback-runner-check.sh target/debug/webhooks-local

step "cargo test (unit, adapter, end-to-end)"
cargo test --workspace --locked

step "Web console: browser test (headless Chromium)"
SCREENSHOT_DIR="$ROOT/target/console-screenshots" scripts/browser-test.sh

step "API fuzzing (Schemathesis against shared/data/openapi.json)"
scripts/api-fuzz.sh

step "OpenAPI document: validate (openapi-spec-validator)"
if [[ ! -x .tools/oas-venv/bin/openapi-spec-validator ]]; then
    mkdir -p .tools
    python3 -m venv .tools/oas-venv
    .tools/oas-venv/bin/pip install -q 'openapi-spec-validator==0.9.0'
fi
.tools/oas-venv/bin/openapi-spec-validator shared/data/openapi.json

step "SAM: install and validate --lint"
scripts/sam.sh install
scripts/sam.sh validate

step "Template linters: cfn-lint + serverless rules, checkov on the translated template"
scripts/lint-templates.sh

if [[ "${SKIP_SAM_BUILD:-0}" != 1 ]]; then
    step "SAM: build (release Lambda bundles)"
    scripts/sam.sh build
    ls -l .aws-sam/build/*/bootstrap

    # The bootstraps sam build just made, as processes against cargo-lambda's Lambda emulator,
    # configured from the translated template (functions/runner/src/lambda).
    step "Lambda mode: walking skeleton, delivery retries, API contract, fair and ordered delivery (E2E_LAMBDA=1)"
    rm -rf target/lambda
    E2E_LAMBDA=1 cargo test -p e2e --locked --test walking_skeleton --test delivery --test api --test fair_delivery
    step "Lambda mode: sample events, timeouts, the IAM check"
    # --nocapture: the IAM check prints each function's calls and what is granted but unused.
    # The functions' own logs are in target/lambda/<stack>/<Function>-<n>.log.
    RUST_LOG=warn cargo test -p e2e --locked --test lambda --test iam -- --ignored --nocapture
else
    echo "test.sh: SKIP_SAM_BUILD=1: the Lambda-mode tests need the bundles; skipped" >&2
fi
step "all tests passed"
