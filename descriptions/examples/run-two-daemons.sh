#!/usr/bin/env bash
# The main job with daemons: a site CA and certificates made on the spot (sfpy-ca: one per
# daemon, one for the user), two sfdaemons on 127.0.0.2 and 127.0.0.3 (port 3800, TLS with
# client certificates, state directories in a fresh temporary folder), the example site
# deployed across both with sfstart (its second machine has sfProcessHost "127.0.0.3"),
# listed on both daemons, terminated, both daemons stopped with sfstopdaemon. Leaves nothing behind: on
# any exit (an error, Ctrl-C) the trap stops the daemons (their applications' cleanup runs),
# cleans what a daemon that had to be killed left, and removes the temporary folder.
#
# The sfpy commands are taken from $SFPY_BIN if set, else from the checkout's .venv/bin, else
# from PATH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ -n "${SFPY_BIN:-}" ]]; then
    bin="${SFPY_BIN%/}/"
elif [[ -x "$repo/.venv/bin/sfdaemon" ]]; then
    bin="$repo/.venv/bin/"
else
    bin=""
fi
hosts=(127.0.0.2 127.0.0.3)
ready_timeout=30                      # seconds a daemon may take to print its ready line
work="$(mktemp -d "${TMPDIR:-/tmp}/sfpy-two-daemons.XXXXXX")"
declare -A pids=()

say() { printf '+ %s\n' "$*" >&2; }
run() { say "$*"; "$@"; }

stop_all() {
    local status=$? host pid waited
    trap - EXIT INT TERM HUP
    for host in "${!pids[@]}"; do
        pid="${pids[$host]}"
        kill -0 "$pid" 2>/dev/null || continue
        # still running (an error came first): stop it as a service manager would
        "${bin}sfstopdaemon" "$host" --no-wait >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
        waited=0
        while kill -0 "$pid" 2>/dev/null && (( waited < 600 )); do
            sleep 0.1; waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            # what its applications left (process groups, files): undone from their journals
            "${bin}sfrun" --recover --run-dir "$work/state-$host/apps" >&2 || status=6
        fi
        wait "$pid" 2>/dev/null || true
    done
    if (( status != 0 )); then
        for host in "${hosts[@]}"; do
            [[ -s "$work/daemon-$host.log" ]] || continue
            echo "--- the log of the daemon on $host (last lines):" >&2
            tail -n 20 "$work/daemon-$host.log" >&2 || true
        done
    fi
    rm -rf "$work"
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The site's CA and certificates, made on the spot (keys mode 0600, in the temporary folder).
ca="$work/ca"
run "${bin}sfpy-ca" init --dir "$ca" --org "sfpy example site" >/dev/null
for host in "${hosts[@]}"; do
    run "${bin}sfpy-ca" issue daemon "$host" --dir "$ca" >/dev/null
done
run "${bin}sfpy-ca" issue user operator --dir "$ca" >/dev/null
# The commands find the user's certificate through the environment (or client.yaml, or flags).
export SFPY_CERT="$ca/operator.pem" SFPY_KEY="$ca/operator.key" SFPY_CA="$ca/ca.pem"
unset SFPY_INSECURE

start_daemon() {
    local host=$1 log="$work/daemon-$1.log" deadline
    : >"$log"
    say "${bin}sfdaemon --host $host --state-dir $work/state-$host --cert … --key … --ca … &"
    "${bin}sfdaemon" --host "$host" --state-dir "$work/state-$host" \
        --cert "$ca/$host.pem" --key "$ca/$host.key" --ca "$ca/ca.pem" \
        </dev/null >"$log" 2>&1 &
    pids[$host]=$!
    deadline=$((SECONDS + ready_timeout))
    until grep -qs '^sfdaemon: ready ' "$log"; do     # its ready line, not a fixed sleep
        if ! kill -0 "${pids[$host]}" 2>/dev/null; then
            echo "sfdaemon on $host exited before it was ready" >&2
            return 1
        fi
        if (( SECONDS >= deadline )); then
            echo "sfdaemon on $host not ready after ${ready_timeout} s" >&2
            return 1
        fi
        sleep 0.05
    done
}

for host in "${hosts[@]}"; do
    start_daemon "$host"
done

site="$here/site-two-hosts.sf"          # vm2 is placed on 127.0.0.3 by sfProcessHost

run "${bin}sfstart" "${hosts[0]}" site "$site"
for host in "${hosts[@]}"; do
    run "${bin}sflist" "$host"
done
run "${bin}sflist" "${hosts[0]}" site
run "${bin}sfterminate" "${hosts[0]}" site
for host in "${hosts[@]}"; do
    run "${bin}sfstopdaemon" "$host"
    wait "${pids[$host]}"               # exits 0 once stopped cleanly
    unset "pids[$host]"
done
echo "two daemons up with TLS, the site deployed across both, listed, terminated, the daemons stopped: nothing left"
