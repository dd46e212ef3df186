#!/usr/bin/env bash
# The README's main job: a grid test site of three real virtual machines (ce, bdii on vmhost1;
# wn on vmhost2) up and down with one command, on a fresh Debian machine.
#
#   1. installs what is missing: the Debian packages (qemu-system-x86, qemu-utils, e2fsprogs,
#      procps, python3-venv, mmdebstrap, openssh-client; apt-get, as root), sfpy in the
#      checkout's .venv; an ssh key pair for root on the guests (made once, kept with the
#      image cache so that the image's parameters, and so its key, stay the same);
#   2. makes a site CA and certificates on the spot (sfpy-ca) and starts two sfdaemons with
#      TLS, on 127.0.0.2 (vmhost1) and 127.0.0.3 (vmhost2), state in a fresh temporary folder;
#   3. sfstart vmhost1 testsite site.sf: each node's ImageBuilder builds the Debian image
#      (bookworm minbase, ssh-server, the ssh key; sfimage's machinery, on the node's host) or
#      takes it from the image store (a cache hit: same parameters, same key; the first
#      build's lock makes the other nodes wait and take its image); then the three nodes'
#      disks (copy-on-write overlays on the image) and QEMU guests (software emulation,
#      user-mode network, the image's own kernel and initramfs) start side by side on both
#      hosts, and sfstart returns when every guest's console shows its hostname and address;
#   4. sfterminate vmhost1 testsite: every guest powered off, the worker node's image saved,
#      every volume removed;
#   5. stops both daemons and checks that nothing is left (QEMU processes, files, loop
#      devices), then removes the temporary folder; on any exit (an error, Ctrl-C) a trap
#      stops what still runs first.
#
# Usage: run-testsite.sh [--image debian|kit] [--ssh-key FILE] [--store DIR] [--site FILE]
#                        [--keep-image DIR] [--no-install]
#   --image debian     (default) the guests boot a Debian image built by sfimage (site.sf)
#   --image kit        the guests boot the boot kit (sfpy-bootkit: a busybox guest, seconds;
#                      site-kit.sf), as before the Debian image
#   --ssh-key FILE     the public key placed in the image for root (default: a key pair made
#                      once in /var/cache/sfpy/testsite/, printed at the end)
#   --store DIR        the image store (default: sfimage's, /var/lib/sfpy/images: the image
#                      stays there, so the next run takes it from the cache; `sfimage list`)
#   --site FILE        another site description using the same hosts
#   --keep-image DIR   copy the saved image to DIR before the temporary folder goes
#   --no-install       install nothing; fail if something is missing
# Environment: SFPY_BIN (the sfpy commands' folder; default the checkout's .venv/bin, made if
# missing), TMPDIR (where the temporary folder goes), SFPY_TESTSITE_CACHE (the key pair's
# folder, default /var/cache/sfpy/testsite), SFPY_TESTSITE_ADDRESSES (the daemons' two
# loopback addresses, default "127.0.0.2 127.0.0.3"), SFPY_TESTSITE_APT_CACHE (downloaded packages kept
# between builds, default /var/cache/sfpy/apt), SFPY_BOOTKIT_CACHE (the boot kit's cache),
# SFPY_TESTSITE_KIT (a boot kit's folder to use instead of running sfpy-bootkit).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
site=""
image=debian
ssh_key=""
store="${SFPY_TESTSITE_STORE:-}"
keep_image=""
install=1
while (( $# )); do
    case "$1" in
        --image)
            case "${2:-}" in debian|kit) image="$2" ;;
                *) echo "run-testsite.sh: --image takes debian or kit" >&2; exit 2 ;; esac
            shift 2 ;;
        --ssh-key) ssh_key="$(realpath "$2")"; shift 2 ;;
        --store) store="$(realpath -m "$2")"; shift 2 ;;
        --site) site="$(realpath "$2")"; shift 2 ;;
        --keep-image) keep_image="$(realpath -m "$2")"; shift 2 ;;
        --no-install) install=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run-testsite.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [[ -z "$site" ]]; then
    [[ "$image" == debian ]] && site="$here/site.sf" || site="$here/site-kit.sf"
fi
cache="${SFPY_TESTSITE_CACHE:-/var/cache/sfpy/testsite}"
apt_cache="${SFPY_TESTSITE_APT_CACHE:-/var/cache/sfpy/apt}"
if [[ "$image" == debian && $EUID -ne 0 ]]; then
    echo "run-testsite.sh: building the Debian image needs root (mmdebstrap); or --image kit" >&2
    exit 1
fi

read -r -a given <<<"${SFPY_TESTSITE_ADDRESSES:-127.0.0.2 127.0.0.3}"
if (( ${#given[@]} != 2 )); then
    echo "run-testsite.sh: SFPY_TESTSITE_ADDRESSES takes two loopback addresses" >&2; exit 2
fi
declare -A address=([vmhost1]=${given[0]} [vmhost2]=${given[1]})
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
    if [[ "$image" == debian ]]; then
        need+=([mmdebstrap]=mmdebstrap)
        [[ -n "$ssh_key" ]] || need+=([ssh-keygen]=openssh-client)   # to make the key pair
    fi
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
    if [[ ! -x "${bin}sfdaemon" || ! -x "${bin}sfimage" ]] \
            || [[ -z "${SFPY_TESTSITE_KIT:-}" && ! -x "${bin}sfpy-bootkit" ]]; then
        (( install )) || { echo "run-testsite.sh: sfpy is not installed in $repo/.venv (--no-install given)" >&2; exit 1; }
        say "installing sfpy into $repo/.venv"
        [[ -x "$repo/.venv/bin/python" ]] || run python3 -m venv "$repo/.venv"
        run "$repo/.venv/bin/pip" install -q "$repo"
    fi
fi
python="$("${bin}python" -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3)"

kit=""
if [[ "$image" == debian ]]; then
    # the key placed in the image: the same every run (a new one would be a new image)
    if [[ -z "$ssh_key" ]]; then
        ssh_key="$cache/id_ed25519.pub"
        if [[ ! -s "$ssh_key" ]]; then
            say "an ssh key pair for root on the guests, made once: $cache/id_ed25519"
            mkdir -p -m 0700 "$cache"
            rm -f "$cache/id_ed25519" "$ssh_key"
            run ssh-keygen -q -t ed25519 -N "" -C "sfpy test site" -f "$cache/id_ed25519"
        fi
    fi
    [[ -r "$ssh_key" ]] || { echo "run-testsite.sh: cannot read the ssh key $ssh_key" >&2; exit 1; }
    mkdir -p "$apt_cache"
    store_shown="${store:-"sfimage's store"}"
elif [[ -n "${SFPY_TESTSITE_KIT:-}" ]]; then
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
if [[ "$image" == debian ]]; then
    say "ready to go after ${setup_seconds} s: a Debian image, ssh key $ssh_key, store $store_shown"
else
    say "ready to go after ${setup_seconds} s: boot kit $kit"
fi

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
export SFPY_TESTSITE_DIR="$work/site"
unset SFPY_TESTSITE_SAVE
if [[ "$image" == debian ]]; then
    export SFPY_TESTSITE_SSH_KEY="$ssh_key" SFPY_TESTSITE_STORE="$store" \
        SFPY_TESTSITE_APT_CACHE="$apt_cache"
else
    export SFPY_TESTSITE_KIT="$kit"
fi

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
if [[ "$image" == debian ]]; then
    say "sfstart: each node's image (built once, or from the store), then three guests on two hosts, in parallel; waiting until every one is ready"
else
    say "sfstart: three guests on two hosts, in parallel; waiting until every one is ready"
fi
step_started=$EPOCHREALTIME
run "${bin}sfstart" vmhost1 "$app" "$site"
up_seconds=$(seconds_since "${step_started/,/.}")
say "every guest ready after ${up_seconds} s"
run "${bin}sflist" vmhost1 "$app"
guests=()
for console in "$work"/site/domains/*.console.log; do
    [[ -e "$console" ]] || continue
    line="$(grep -a -m1 -o -E 'sfpy-guest(: hostname [^ ]* address [^ ]* on [^ [:cntrl:]]*| hostname=[^ ]* ip=[^ [:cntrl:]]*)' "$console" || true)"
    guests+=("$(basename "$console" .console.log): ${line:-"(no ready line)"}")
    printf '    %s\n' "${guests[-1]}" >&2
done

image_lines=()
if [[ "$image" == debian ]]; then
    # what each node's ImageBuilder said (daemon logs): "image KEY built: PATH" or
    # "image KEY from the store: PATH"
    mapfile -t image_lines < <(grep -h -o -E 'image [0-9a-f]{12} (built|from the store): [^ ]+' \
                               "$work"/daemon-*.log || true)
    if (( ${#image_lines[@]} != 3 )); then
        echo "run-testsite.sh: expected three nodes' image lines in the daemons' logs, found ${#image_lines[@]}" >&2
        exit 1
    fi
    image_path="${image_lines[0]##*: }"
    image_key="$(basename "$(dirname "$image_path")")"
    built=$(printf '%s\n' "${image_lines[@]}" | grep -c ' built: ' || true)
    if (( built == 0 )); then cache_hit="yes (every node took it from the store)"
    else cache_hit="no (built once; the other nodes took it from the store)"; fi
    # the key is in root's authorized_keys of the image the guests booted
    if ! debugfs -R "cat /root/.ssh/authorized_keys" "$image_path" 2>/dev/null \
            | grep -qxF -- "$(head -n1 "$ssh_key")"; then
        echo "run-testsite.sh: $ssh_key is not in /root/.ssh/authorized_keys of $image_path" >&2
        exit 1
    fi
    say "image $image_key (cache hit: $cache_hit); $ssh_key in its /root/.ssh/authorized_keys"
fi

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
$(if [[ "$image" == debian ]]; then
    printf '  image: Debian (sfimage) %s\n' "$image_key"
    printf '    %s\n' "$image_path"
    printf '    cache hit: %s\n' "$cache_hit"
    printf '    ssh key placed for root: %s\n' "$ssh_key"
else
    printf '  image: the boot kit %s\n' "$kit"
fi)
  setup (packages, sfpy, key or kit): ${setup_seconds} s
  sfstart until every guest ready:  ${up_seconds} s
  sfterminate (image saved):        ${down_seconds} s   ${saved_line}
  total:                            ${total_seconds} s
  nothing left: no QEMU process, volume, loop device or daemon; temporary folder removed
EOF
