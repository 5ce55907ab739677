#!/usr/bin/env bash
# Fails unless every listening socket of the given processes and their descendants is on loopback.
#
#   scripts/loopback-check.sh PID...
#
# Lists the listening TCP sockets (and bound UDP sockets) of each PID's process tree with
# `ss -Hltunp`, one line each, and exits 1 if any address is not loopback (127.0.0.0/8, ::1,
# ::ffff:127.x.x.x): 0.0.0.0, ::, * and the machine's own addresses fail. Also exits 1 if the trees
# listen on nothing at all (then ss could not see them, and the check would prove nothing).
set -euo pipefail

die() { echo "loopback-check.sh: $*" >&2; exit 1; }

[[ $# -ge 1 ]] || die "usage: $0 PID..."
command -v ss >/dev/null 2>&1 || die "needs 'ss' (iproute2)"

descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null || true); do
        echo "$child"
        descendants "$child"
    done
}

pids=()
for pid in "$@"; do
    [[ "$pid" =~ ^[0-9]+$ ]] || die "not a PID: $pid"
    [[ -d "/proc/$pid" ]] || die "no process $pid"
    pids+=("$pid")
    while IFS= read -r d; do pids+=("$d"); done < <(descendants "$pid")
done

# ss -p prints e.g. users:(("java",pid=16874,fd=114)); one socket may list several processes.
ss -Hltunp | awk -v pids="${pids[*]}" '
    BEGIN { n = split(pids, p, " "); for (i = 1; i <= n; i++) want[p[i]] = 1 }
    {
        ours = 0; rest = $0
        while (match(rest, /pid=[0-9]+/)) {
            if (substr(rest, RSTART + 4, RLENGTH - 4) in want) ours = 1
            rest = substr(rest, RSTART + RLENGTH)
        }
        if (!ours) next
        proto = $1; local = $5
        addr = local; sub(/:[0-9*]+$/, "", addr); gsub(/[][]/, "", addr); sub(/%.*$/, "", addr)
        ok = (addr ~ /^127\./ || addr == "::1" || addr ~ /^::ffff:127\./)
        proc = $0; sub(/^.*users:/, "", proc)
        printf "  %-3s %-28s %s %s\n", proto, local, (ok ? "loopback" : "NOT LOOPBACK"), proc
        found++; if (!ok) bad++
    }
    END {
        if (!found) { print "loopback-check.sh: no listening socket found for PIDs " pids > "/dev/stderr"; exit 1 }
        if (bad) { printf "loopback-check.sh: %d of %d sockets listen beyond loopback\n", bad, found > "/dev/stderr"; exit 1 }
        printf "loopback-check.sh: all %d listening sockets are on loopback\n", found
    }'
