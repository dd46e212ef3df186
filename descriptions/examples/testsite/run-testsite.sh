#!/usr/bin/env bash
# The README's main job: a grid test site of three real virtual machines (ce, bdii on vmhost1;
# wn on vmhost2) up and down with one command, on a fresh Debian machine.
#
#   1. installs what is missing: the Debian packages (qemu-system-x86, qemu-utils, e2fsprogs,
#      procps, python3-venv; apt-get, as root), sfpy in the checkout's .venv, the boot kit
#      (sfpy-bootkit: a Debian cloud kernel, a busybox initramfs and root filesystem);
#   2. makes a site CA and certificates on the spot (sfpy-ca) and starts two sfdaemons with
#      TLS, on 127.0.0.2 (vmhost1) and 127.0.0.3 (vmhost2), state in a fresh temporary folder;
#   3. sfstart vmhost1 testsite site.sf: the three nodes' disks (copy-on-write overlays) and
#      QEMU guests (software emulation, user-mode network) start side by side on both hosts,
#      and sfstart returns when every guest's console shows its hostname and address;
#   4. sfterminate vmhost1 testsite: every guest powered off, the worker node's image saved,
#      every volume removed;
#   5. stops both daemons and checks that nothing is left (QEMU processes, files, loop
#      devices), then removes the temporary folder; on any exit (an error, Ctrl-C) a trap
#      stops what still runs first.
#
# Usage: run-testsite.sh [--site FILE] [--keep-image DIR] [--no-install]
#   --site FILE        another site description using the same hosts (default: site.sf here)
#   --keep-image DIR   copy the saved image to DIR before the temporary folder goes
#   --no-install       install nothing; fail if something is missing
# Environment: SFPY_BIN (the sfpy commands' folder; default the checkout's .venv/bin, made if
# missing), TMPDIR (where the temporary folder goes), SFPY_BOOTKIT_CACHE (the boot kit's cache),
# SFPY_TESTSITE_KIT (a boot kit's folder to use instead of running sfpy-bootkit).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
site="$here/site.sf"
keep_image=""
install=1
while (( $# )); do
    case "$1" in
        --site) site="$(realpath "$2")"; shift 2 ;;
        --keep-image) keep_image="$(realpath -m "$2")"; shift 2 ;;
        --no-install) install=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run-testsite.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

declare -A address=([vmhost1]=127.0.0.2 [vmhost2]=127.0.0.3)
hosts=(vmhost1 vmhost2)
app=testsite
ready_timeout=60                      # seconds a daemon may take to print its ready line
started_at=$EPOCHREALTIME

say() { printf '==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
seconds_since() { python3 -c 'import sys,time; print(f"{time.time() - float(sys.argv[1]):.1f}")' "$1"; }

# -- 1. what the job needs ---------------------------------------------------------------------
missing_packages() {
    local -A need=([qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils
                   [mke2fs]=e2fsprogs [debugfs]=e2fsprogs [pgrep]=procps [losetup]=util-linux)
    local tool packages=()
    for tool in "${!need[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || packages+=("${need[$tool]}")
    done
    if [[ -z "${SFPY_BIN:-}" && ! -x "$repo/.venv/bin/sfdaemon" ]] \
            && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        packages+=(python3-venv)
    fi
    printf '%s\n' "${packages[@]}" | sort -u | sed '/^$/d'
}

step_started=$EPOCHREALTIME
mapfile -t packages < <(missing_packages)
if (( ${#packages[@]} )); then
    if (( ! install )); then
        echo "run-testsite.sh: missing Debian packages: ${packages[*]} (--no-install given)" >&2
        exit 1
    fi
    if (( EUID != 0 )); then
        echo "run-testsite.sh: missing Debian packages: ${packages[*]}; run as root to install them" >&2
        exit 1
    fi
    say "installing ${packages[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    run apt-get update -q >/dev/null
    run apt-get install -y -q --no-install-recommends \
        "${packages[@]}" >/dev/null
fi

if [[ -n "${SFPY_BIN:-}" ]]; then
    bin="${SFPY_BIN%/}/"
else
    bin="$repo/.venv/bin/"
    if [[ ! -x "${bin}sfdaemon" ]] || [[ -z "${SFPY_TESTSITE_KIT:-}" && ! -x "${bin}sfpy-bootkit" ]]; then
        (( install )) || { echo "run-testsite.sh: sfpy is not installed in $repo/.venv (--no-install given)" >&2; exit 1; }
        say "installing sfpy into $repo/.venv"
        [[ -x "$repo/.venv/bin/python" ]] || run python3 -m venv "$repo/.venv"
        run "$repo/.venv/bin/pip" install -q "$repo"
    fi
fi
python="$("${bin}python" -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3)"

if [[ -n "${SFPY_TESTSITE_KIT:-}" ]]; then
    kit="$SFPY_TESTSITE_KIT"            # a boot kit given (vmlinuz, initrd, rootfs.ext4)
else
    # the kit is built from Debian packages: apt needs its package lists (a fresh machine may
    # have none yet)
    if (( install && EUID == 0 )) && ! apt-cache show busybox-static >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive run apt-get update -q >/dev/null
    fi
    say "the boot kit (sfpy-bootkit: built once per machine, then cached)"
    kit_json="$(run "${bin}sfpy-bootkit" --json)"
    kit="$("$python" -c 'import json, sys; print(json.loads(sys.argv[1])["directory"])' "$kit_json")"
fi
setup_seconds=$(seconds_since "${step_started/,/.}")
say "ready to go after ${setup_seconds} s: boot kit $kit"

# -- 2. the site's folder, certificates and daemons --------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/sfpy-testsite.XXXXXX")"
declare -A pids=()

leftovers() {
    # What the site could have left: QEMU (or any) processes naming the folder, loop devices
    # backed by its files, files in its image folders.
    local found=0 line
    while read -r line; do
        [[ -n "$line" ]] || continue
        echo "  left: process $line" >&2; found=1
    done < <(pgrep -a -f -- "$work/" | grep -v -e "pgrep" -e "run-testsite" || true)
    while read -r line; do
        [[ -n "$line" ]] || continue
        echo "  left: loop device $line" >&2; found=1
    done < <(losetup -a 2>/dev/null | grep -F -- "$work/" || true)
    for folder in images domains scratch; do
        [[ -d "$work/site/$folder" ]] || continue
        while read -r line; do
            [[ -n "$line" ]] || continue
            echo "  left: file $line" >&2; found=1
        done < <(find "$work/site/$folder" -mindepth 1 2>/dev/null)
    done
    return "$found"
}

stop_all() {
    local status=$? host pid waited
    trap - EXIT INT TERM HUP
    for host in "${!pids[@]}"; do
        pid="${pids[$host]}"
        kill -0 "$pid" 2>/dev/null || continue
        # still running (an error came first): stop it, its applications' cleanup runs
        "${bin}sfstopdaemon" "$host" --no-wait >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
        waited=0
        while kill -0 "$pid" 2>/dev/null && (( waited < 1200 )); do
            sleep 0.1; waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            # what its applications left (QEMU processes, files): undone from their journals
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
        if ! leftovers; then
            echo "run-testsite.sh: the lines above were left behind" >&2
            status=6
        fi
    fi
    rm -rf "$work"
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The site's folders, named to the description through the environment (defaults.sf).
mkdir -p "$work/site/images" "$work/site/domains" "$work/site/scratch" "$work/site/saved"
export SFPY_TESTSITE_DIR="$work/site" SFPY_TESTSITE_KIT="$kit"
unset SFPY_TESTSITE_SAVE

say "a site CA and certificates (sfpy-ca), two daemons with TLS"
ca="$work/ca"
run "${bin}sfpy-ca" init --dir "$ca" --org "sfpy test site" >/dev/null
for host in "${hosts[@]}"; do
    run "${bin}sfpy-ca" issue daemon "$host" --ip "${address[$host]}" --dir "$ca" >/dev/null
done
run "${bin}sfpy-ca" issue user operator --dir "$ca" >/dev/null
# One host-name map for the commands and the daemons: vmhost1 and vmhost2 are loopback
# addresses of this machine.
{
    echo "hosts:"
    for host in "${hosts[@]}"; do echo "  $host: \"${address[$host]}\""; done
} >"$work/hosts.yaml"
export SFPY_CLIENT_CONFIG="$work/hosts.yaml"
# The commands find the user's certificate through the environment (or client.yaml, or flags).
export SFPY_CERT="$ca/operator.pem" SFPY_KEY="$ca/operator.key" SFPY_CA="$ca/ca.pem"
unset SFPY_INSECURE

start_daemon() {
    local host=$1 log="$work/daemon-$1.log" deadline
    : >"$log"
    printf '+ %s\n' "${bin}sfdaemon --config $work/hosts.yaml --host ${address[$host]} --state-dir $work/state-$host --cert … --key … --ca … &" >&2
    "${bin}sfdaemon" --config "$work/hosts.yaml" --host "${address[$host]}" \
        --state-dir "$work/state-$host" \
        --cert "$ca/$host.pem" --key "$ca/$host.key" --ca "$ca/ca.pem" \
        </dev/null >"$log" 2>&1 &
    pids[$host]=$!
    deadline=$((SECONDS + ready_timeout))
    until grep -qs '^sfdaemon: ready ' "$log"; do     # its ready line, not a fixed sleep
        if ! kill -0 "${pids[$host]}" 2>/dev/null; then
            echo "sfdaemon on ${address[$host]} exited before it was ready" >&2
            return 1
        fi
        if (( SECONDS >= deadline )); then
            echo "sfdaemon on ${address[$host]} not ready after ${ready_timeout} s" >&2
            return 1
        fi
        sleep 0.05
    done
}
for host in "${hosts[@]}"; do
    start_daemon "$host"
done

# -- 3. the site up: sfstart returns when every guest is ready ----------------------------------
say "sfstart: three guests on two hosts, in parallel; waiting until every one is ready"
step_started=$EPOCHREALTIME
run "${bin}sfstart" vmhost1 "$app" "$site"
up_seconds=$(seconds_since "${step_started/,/.}")
say "every guest ready after ${up_seconds} s"
run "${bin}sflist" vmhost1 "$app"
guests=()
for console in "$work"/site/domains/*.console.log; do
    [[ -e "$console" ]] || continue
    line="$(grep -a -m1 -o 'sfpy-guest hostname=[^ ]* ip=[^ [:cntrl:]]*' "$console" || true)"
    guests+=("$(basename "$console" .console.log): ${line:-"(no ready line)"}")
    printf '    %s\n' "${guests[-1]}" >&2
done

# -- 4. the site down, one image saved ------------------------------------------------------------
say "sfterminate: every guest powered off, the worker node's image saved, volumes removed"
step_started=$EPOCHREALTIME
run "${bin}sfterminate" vmhost1 "$app"
down_seconds=$(seconds_since "${step_started/,/.}")
mapfile -t saved < <(find "$work/site/saved" -type f)
if (( ${#saved[@]} != 1 )); then
    echo "run-testsite.sh: expected one saved image, found ${#saved[@]}" >&2
    exit 1
fi
saved_line="$(basename "${saved[0]}") ($(du -h "${saved[0]}" | cut -f1))"
say "saved image: $saved_line"
if [[ -n "$keep_image" ]]; then
    mkdir -p "$keep_image"
    cp "${saved[0]}" "$keep_image/"
    say "copied to $keep_image/"
fi
rm -f "${saved[0]}"

# -- 5. daemons stopped, nothing left ---------------------------------------------------------
for host in "${hosts[@]}"; do
    run "${bin}sfstopdaemon" "$host"
    wait "${pids[$host]}"               # exits 0 once stopped cleanly
    unset "pids[$host]"
done
if ! leftovers; then
    echo "run-testsite.sh: the lines above were left behind" >&2
    exit 6
fi

total_seconds=$(seconds_since "${started_at/,/.}")
cat <<EOF

test site: 3 guests on 2 hosts (vmhost1 = ${address[vmhost1]}, vmhost2 = ${address[vmhost2]}), QEMU
$(printf '  %s\n' "${guests[@]}")
  setup (packages, sfpy, boot kit): ${setup_seconds} s
  sfstart until every guest ready:  ${up_seconds} s
  sfterminate (image saved):        ${down_seconds} s   ${saved_line}
  total:                            ${total_seconds} s
  nothing left: no QEMU process, volume, loop device or daemon; temporary folder removed
EOF
