"""What the daemon commands share: HOST parsing, connecting, following an operation, output.

Each command (``sfstart``, ``sfterminate``, ``sflist``, ``sfping``, ``sfdiagnostics``,
``sfstopdaemon``) is a thin module over this one. HOST is ``name``, ``name:port`` or an
address (``[::1]:3800`` for IPv6 with a port); no port means 3800. A name is looked up in
the client configuration's host-name map first (:mod:`sfpy.cli.hosts`), then DNS. A daemon that cannot be
reached is exit 4 with one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from sfpy.cli.common import EXIT_OK, EXIT_TIMEOUT, ArgumentParser

#: Seconds each remote call may take (a long-poll asks the daemon to wait less than this).
CALL_TIMEOUT = 30.0
#: Seconds one ``operation`` long-poll waits for news on the daemon.
POLL_WAIT = 10.0
#: ``since`` past any line: the daemon answers when the operation is done (or the wait ends).
OUTCOME_ONLY = 1 << 30


def parser(
    prog: str, description: str, *, json_output: bool = True, debug: bool = True
) -> ArgumentParser:
    """An ArgumentParser with HOST and the options every daemon command takes."""
    result = ArgumentParser(prog=prog, description=description)
    result.add_argument("host", metavar="HOST", help="the daemon: name, name:port or address "
                        "(port 3800 when not given); a name in the client configuration's "
                        "host-name map, else DNS")
    from sfpy.cli import clientconfig

    clientconfig.add_options(result)
    result.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up on a daemon that does not answer (default %(default)g)")
    if json_output:
        result.add_argument("--json", action="store_true", help="print the result as JSON")
    if debug:
        result.add_argument("--debug", action="store_true", help="show Python tracebacks")
    return result


def connect(args: argparse.Namespace) -> Any:
    """A checked connection to the daemon HOST names (RemoteError, exit 4, otherwise)."""
    from sfpy.cli import clientconfig
    from sfpy.cli.hosts import load_client_map, resolve_host
    from sfpy.engine import remote, tls

    host, port = resolve_host(args.host, load_client_map())
    found = clientconfig.resolve(args)
    args.security = found  # sfdiagnostics shows where each came from
    if found.insecure:
        remote.configure(insecure=True)
    elif found.ca is None:
        raise clientconfig.ClientConfigError(
            "no site CA to check the daemon against: give --ca (and --cert, --key), set "
            f"SFPY_CA, or write {clientconfig.user_config()}; --insecure for a loopback daemon")
    else:
        remote.configure(tls.TLSFiles(ca=found.ca, cert=found.cert, key=found.key))
    timeout = max(args.connect_timeout, 0.1)
    client = remote.connect(host, port, timeout)
    client._proxy._pyroTimeout = max(timeout, CALL_TIMEOUT)
    return client


def say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def follow(client: Any, op_id: str, *, timeout: float | None = None, quiet: bool = False,
           prog: str = "sf") -> dict[str, Any]:
    """Print an operation's lines on stderr until it is done; returns its last view. On
    ``timeout`` (seconds) returns a view whose outcome is exit 5 (the work goes on)."""
    # Quiet: ask for the outcome only (no state lines), so the number of calls does not
    # grow with the number of components.
    since = OUTCOME_ONLY if quiet else 0
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = POLL_WAIT
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - time.monotonic()))
        view = client.operation(op_id, since, wait)
        for line in view["lines"]:
            if not quiet:
                say(line)
        since = view["next"]
        if view["done"]:
            return view
        if deadline is not None and time.monotonic() >= deadline:
            view["outcome"] = {
                "exit": EXIT_TIMEOUT, "state": "unknown", "record": None,
                "message": f"{prog}: timed out after {timeout:g} s; operation {op_id} goes on "
                "on the daemon", "cleanup_failures": [], "left": [],
            }
            return view


def report(outcome: dict[str, Any], prog: str) -> int:
    """Print an outcome's failure details; its exit code."""
    code = int(outcome.get("exit", 1))
    record = outcome.get("record")
    if code != EXIT_OK and record:
        say(f"{prog}: {outcome.get('message')}")
        say(f"Termination Record: {record.get('id')},  type: {record.get('type')},  "
            f"description: {record.get('description')}")
    elif code != EXIT_OK:
        say(f"{prog}: {outcome.get('message')}")
    for line in outcome.get("cleanup_failures") or []:
        say(f"{prog}: cleanup failed: {line}")
    for line in outcome.get("left") or []:
        say(f"{prog}: left: {line}")
    return code
