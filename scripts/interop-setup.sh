#!/usr/bin/env bash
# Installs the receiver libraries the interop test (tests/tests/interop.rs) verifies deliveries
# with, from PyPI and npm only, into git-ignored folders:
#   .tools/interop-venv          Python venv with examples/python/requirements.txt (standardwebhooks;
#                                cryptography for examples/verify/ed25519.py)
#   examples/node/node_modules   `npm ci` from examples/node/package-lock.json (standardwebhooks);
#                                examples/verify/verify.mjs uses the same install
# Idempotent: does nothing when the pinned versions are already installed.
#
# Env: INTEROP_PYTHON  interpreter (>= 3.9) used to create the venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/interop-venv"
REQS="$ROOT/examples/python/requirements.txt"
NODE_DIR="$ROOT/examples/node"

die() { echo "interop-setup.sh: $*" >&2; exit 1; }

find_python() {
    local cand
    for cand in ${INTEROP_PYTHON:-} python3 python3.13 python3.12 python3.11; do
        if "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' >/dev/null 2>&1; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

# Python: a venv with the pinned requirements; the stamp (a copy of requirements.txt) is written last.
py_stamp="$VENV/.interop-requirements"
if [[ -x "$VENV/bin/python" && -f "$py_stamp" ]] && cmp -s "$REQS" "$py_stamp"; then
    echo "interop-setup.sh: Python verifier up to date ($(grep -v '^#' "$REQS" | xargs))"
else
    py="$(find_python)" || die "need Python >= 3.9 (set INTEROP_PYTHON)"
    echo "interop-setup.sh: installing $REQS into .tools/interop-venv (using $py)"
    mkdir -p "$ROOT/.tools"
    rm -f "$py_stamp"
    [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
    "$VENV/bin/python" -c 'import standardwebhooks, cryptography; print("standardwebhooks", standardwebhooks.__version__, "cryptography", cryptography.__version__)'
    cp "$REQS" "$py_stamp"
fi

# Node: `npm ci` from the lockfile; the stamp (a copy of package-lock.json) is written last.
command -v node >/dev/null || die "need node (>= 18) and npm"
node_stamp="$NODE_DIR/node_modules/.interop-package-lock.json"
if [[ -f "$node_stamp" ]] && cmp -s "$NODE_DIR/package-lock.json" "$node_stamp"; then
    echo "interop-setup.sh: Node verifier up to date"
else
    echo "interop-setup.sh: npm ci in examples/node"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    node -e 'console.log("standardwebhooks", require(process.argv[1]).version)' "$NODE_DIR/node_modules/standardwebhooks/package.json"
    cp "$NODE_DIR/package-lock.json" "$node_stamp"
fi
