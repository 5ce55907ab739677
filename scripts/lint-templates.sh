#!/usr/bin/env bash
# Template linters beyond `sam validate --lint`, both with zero findings allowed:
#   - cfn-lint with AWS's serverless rules (cfn-lint-serverless) on infra/template.yaml and
#     infra/data.yaml;
#   - checkov on the TRANSLATED template (plain CloudFormation: what AWS really creates) and on
#     infra/data.yaml.
# Prints the time each linter takes. Installs its pinned tools into .tools/lint-venv (git-ignored).
#
#   scripts/lint-templates.sh           install (idempotent) and lint
#
# Why translate: checkov's CloudFormation checks target AWS::Lambda::Function,
# AWS::ApiGatewayV2::Stage, AWS::IAM::Role..., and know few AWS::Serverless::* types. `sam build`
# does not translate (.aws-sam/build/template.yaml keeps the SAM Transform, only CodeUri changes),
# so scripts/sam-translate.py runs the SAM venv's pinned aws-sam-translator offline. SAM copies a
# function's Metadata (its checkov skips) onto the AWS::Lambda::Function it generates.
#
# Skips: every rule that does not apply is skipped in the template, next to the resource, with a
# one-line reason (Metadata cfn-lint.config.ignore_checks / Metadata.checkov.skip), in both
# templates.
#
# Env: LINT_PYTHON  interpreter (>= 3.9) used to create the venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV=".tools/lint-venv"
OUT=".tools/lint"
PINS="cfn-lint==1.58.0 cfn-lint-serverless==0.3.6 checkov==3.3.30"
STAMP="$VENV/.installed"

die() { echo "lint-templates.sh: $*" >&2; exit 1; }

find_python() {
    local cand
    for cand in ${LINT_PYTHON:+"$LINT_PYTHON"} python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
        if "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' >/dev/null 2>&1; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

install() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$PINS" ]] && return 0
    local py
    py="$(find_python)" || die "need Python >= 3.9 (set LINT_PYTHON)"
    echo "lint-templates.sh: installing $PINS into $VENV (using $py)" >&2
    rm -f "$STAMP"
    [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV"
    # shellcheck disable=SC2086  # PINS is a word list on purpose
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check $PINS
    echo "$PINS" > "$STAMP"     # written last: marks a finished install
}

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

install
scripts/sam.sh install          # its venv has the aws-sam-translator that sam itself uses
mkdir -p "$OUT"

t=$(now)
"$VENV/bin/cfn-lint" --append-rules cfn_lint_serverless.rules -- infra/template.yaml
"$VENV/bin/cfn-lint" --append-rules cfn_lint_serverless.rules -- infra/data.yaml
echo "lint-templates.sh: cfn-lint + serverless rules: no findings ($(took "$t"))"

t=$(now)
.tools/venv/bin/python scripts/sam-translate.py infra/template.yaml > "$OUT/template.translated.json"
echo "lint-templates.sh: SAM translation: $OUT/template.translated.json ($(took "$t"))"

# --skip-download: no call to the Prisma Cloud API (unreachable offline; it only adds guideline links).
checkov_run() {
    "$VENV/bin/checkov" --framework cloudformation --compact --quiet --skip-download "$@"
}
t=$(now)
checkov_run -f "$OUT/template.translated.json"
checkov_run -f infra/data.yaml
echo "lint-templates.sh: checkov: no failed checks ($(took "$t"))"
