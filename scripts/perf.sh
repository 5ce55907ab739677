#!/usr/bin/env bash
# Prints every performance figure of docs/performance.md in one run.
#
#   scripts/perf.sh            full run (~5-10 min on 2 cores, after the build)
#   scripts/perf.sh --quick    fewer messages (~2-3 min)
#   scripts/perf.sh --only 1,4 a subset of the figures (1-8)
#
# Starts its own LocalStack on port $PERF_LOCALSTACK_PORT (default 45684) and stops it on exit,
# also on failure; builds the release `perf` binary of the e2e crate and runs it. The cold-start
# and memory figures use the bootstraps of `sam build` (.aws-sam/build/*/bootstrap); they are
# built (bash scripts/sam.sh build, ~4 min) only if absent, unless PERF_SKIP_SAM_BUILD=1.
# The output is also written to target/perf/last-run.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PORT="${PERF_LOCALSTACK_PORT:-45684}"
export LOCALSTACK_PORT="$PORT"
mkdir -p target/perf
OUT=target/perf/last-run.txt

step() { printf '\n== %s (%s)\n' "$*" "$(date +%T)" >&2; }

step "bootstraps (sam build)"
if ! ls .aws-sam/build/*/bootstrap >/dev/null 2>&1; then
    if [[ "${PERF_SKIP_SAM_BUILD:-0}" == 1 ]]; then
        echo "perf.sh: .aws-sam/build/*/bootstrap absent and PERF_SKIP_SAM_BUILD=1: figures 4 and 5 will say so" >&2
    else
        bash scripts/sam.sh build
    fi
fi

step "cargo build --release -p e2e --bin perf"
cargo build --release -p e2e --bin perf

step "LocalStack on port $PORT"
scripts/localstack.sh setup
trap 'scripts/localstack.sh stop "$PORT" || true' EXIT
scripts/localstack.sh start "$PORT" >&2
while IFS= read -r line; do export "${line?}"; done < <(scripts/localstack.sh env "$PORT")

step "perf $*"
{
    echo "command: scripts/perf.sh $*"
    echo "host: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
    echo "bootstraps (stripped sizes, sam build):"
    for f in .aws-sam/build/*/bootstrap; do
        [[ -f "$f" ]] || continue
        printf '  %-40s %10d bytes  %s\n' "$f" "$(stat -c %s "$f")" "$(file -b "$f" | grep -o 'not stripped\|stripped' || true)"
    done
    target/release/perf "$@"
} 2>&1 | tee "$OUT"
exit "${PIPESTATUS[0]}"
