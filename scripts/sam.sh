#!/usr/bin/env bash
# SAM CLI + cargo-lambda in a project-local venv (.tools/venv, git-ignored).
#
#   scripts/sam.sh install      install pinned aws-sam-cli + cargo-lambda (idempotent)
#   scripts/sam.sh validate     sam validate --lint (infra/template.yaml via samconfig.toml),
#                               then cfn-lint on the nested infra/data.yaml
#   scripts/sam.sh build [..]   sam build (release binaries via cargo-lambda)
#   scripts/sam.sh ARGS...      any other sam command, e.g. `scripts/sam.sh deploy --guided`
#
# Env: SAM_PYTHON  interpreter (>= 3.11) used to create the venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
PINS="aws-sam-cli==1.170.0 cargo-lambda==1.9.2"
STAMP="$TOOLS/.sam-installed"

export SAM_CLI_TELEMETRY=0

die() { echo "sam.sh: $*" >&2; exit 1; }

# First interpreter that actually runs and is >= 3.11 (pyenv shims may exist but fail).
find_python() {
    local cand
    local -a cands=()
    [[ -n "${SAM_PYTHON:-}" ]] && cands+=("$SAM_PYTHON")
    cands+=(python3 python3.13 python3.12 python3.11)
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    # .tools/python: where scripts/localstack.sh installs a CPython with uv on machines without one.
    for cand in "$pyenv_root"/versions/3.1[1-9]*/bin/python3 "$TOOLS"/python/cpython-3.1[1-9]*/bin/python3; do
        [[ -x "$cand" ]] && cands+=("$cand")
    done
    for cand in "${cands[@]}"; do
        if "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

installed() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$PINS" && -x "$VENV/bin/sam" ]]; }

install() {
    if installed; then
        return 0
    fi
    local py
    py="$(find_python)" || die "need Python >= 3.11 (set SAM_PYTHON)"
    echo "sam.sh: installing $PINS into .tools/venv (using $py)" >&2
    mkdir -p "$TOOLS"
    rm -f "$STAMP"
    [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV"
    # shellcheck disable=SC2086  # PINS is a word list on purpose
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check $PINS
    "$VENV/bin/sam" --version >&2
    "$VENV/bin/cargo-lambda" lambda --version >&2
    echo "$PINS" > "$STAMP"     # written last: marks a finished install
}

prepare() {
    install
    export PATH="$VENV/bin:$PATH"     # sam finds cargo-lambda (and ziglang) here
    cd "$ROOT"
}

run_sam() {
    prepare
    exec sam "$@"
}

validate() {
    prepare
    sam validate --lint "$@"
    # sam lints only the parent template; lint the nested data template too (exit 0 = no findings).
    cfn-lint infra/data.yaml
}

cmd="${1:-}"
case "$cmd" in
    install)  install ;;
    validate) shift; validate "$@" ;;
    build)    shift; run_sam build "$@" ;;
    ""|-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" ;;
    *)        run_sam "$@" ;;
esac
