"""``sfdiagnostics HOST [NAME]``: what HOST's daemon says about itself: versions, uptime,
load and memory, applications, recent errors, and what it recovered when it started; and the
TLS side: which certificate, key and CA this client used (and where it found each), the
daemon's certificate, and the subject and roles the daemon sees for this client.

    sfdiagnostics HOST NAME          one application: its tree with states, recent errors,
                                     long work in progress and for how long, open journal
    sfdiagnostics HOST --leftovers   what the journals in the state directory say dead
                                     applications made and did not undo, with the command
                                     that cleans each
    sfdiagnostics HOST --clean NAME  run recovery for the dead application NAME

Exit 0; 1 an unknown application (or a live one given to ``--clean``); 4 no daemon
reachable; 6 ``--clean`` could not clean everything (listed), or ``--leftovers`` found some.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_CLEANUP, EXIT_OK, run_command


def _main(argv: Sequence[str] | None) -> int:
    parser = common.parser("sfdiagnostics", "Show the state of the daemon of HOST, or of "
                           "its application NAME.")
    parser.add_argument("name", metavar="NAME", nargs="?", help="one application")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--leftovers", action="store_true",
                      help="what dead applications' journals say is left, and how to clean it")
    what.add_argument("--clean", metavar="DEAD", help="run recovery for the dead application DEAD")
    args = parser.parse_args(argv)
    if args.name is not None and (args.leftovers or args.clean):
        parser.error("NAME goes with neither --leftovers nor --clean")
    with common.connect(args) as client:
        if args.clean:
            return _clean(client.clean(args.clean), args.json)
        if args.leftovers:
            return _leftovers(client.leftovers(), args.json)
        if args.name is not None:
            return _application(client.application_diagnostics(args.name), args.json)
        data = client.diagnostics()
    security = args.security
    data["client"] = {"insecure": security.insecure, "cert": security.cert, "key": security.key,
                      "ca": security.ca, "sources": security.sources,
                      "daemon_subject": None if client.peer is None else client.peer.subject}
    if args.json:
        common.print_json(data)
        return EXIT_OK
    for line in security.lines():
        print(line)
    if client.peer is not None:
        print(f"daemon certificate: {client.peer.subject} "
              f"(names {', '.join([*client.peer.dns, *client.peer.ips]) or 'nothing'})")
    caller = data.get("caller") or {}
    print(f"the daemon sees you as {caller.get('subject') or 'a plain-TCP caller'}, roles: "
          f"{', '.join(caller.get('roles') or []) or 'none'}")
    print(f"host {data['host']} ({data['address']}), sfpy {data['version']}, API {data['api']}, "
          f"Python {data['python']}, pid {data['pid']}")
    print(f"up {data['uptime']:.0f} s, load {' '.join(f'{x:.2f}' for x in data['load'])}, "
          f"RSS {data['rss'] / 2**20:.1f} MiB, {data['threads']} threads, "
          f"memory {data['memory']['available'] / 2**20:.0f} of "
          f"{data['memory']['total'] / 2**20:.0f} MiB available")
    print(f"state dir {data['state_dir']}, on stop: {data['on_stop']}")
    print(f"applications: {len(data['applications'])}")
    for app in data["applications"]:
        print(f"  {app['name']}  {app['state']}  {app['components']} components")
    _section("recent errors:", [f"{error['application']}: {error['path'] or '-'}: "
                                f"{error['message']}" for error in data["errors"]])
    _section("recovery at start:", data["recovery"])
    return EXIT_OK


def _application(data: dict[str, Any], as_json: bool) -> int:
    if as_json:
        common.print_json(data)
        return EXIT_OK
    states = ", ".join(f"{count} {state}" for state, count in sorted(data["states"].items()))
    print(f"{data['name']}  {data['state']}  on {data['host']}, {data['components']} components "
          f"({states})")
    if data.get("tree") is not None:
        _node(data["tree"], 1)
    for part in data.get("detached") or []:
        print("  detached:")
        _node(part, 2)
    _section("in progress:", [f"{activity['path']}  {activity['phase']}  {activity['what']}  "
                              f"for {activity['seconds']:.1f} s" for activity in data["activities"]])
    _section("recent errors:", [f"{error['path'] or '-'}: {error['message']}"
                                for error in data["errors"]])
    _section("made and not yet undone (the journal):", [entry["what"] for entry in data["journal"]])
    return EXIT_OK


def _section(title: str, lines: list[str]) -> None:
    """A titled, indented list; nothing at all when there is nothing to list."""
    if lines:
        print(title)
        for line in lines:
            print(f"  {line}")


def _node(node: dict[str, Any], depth: int) -> None:
    print(f"{'  ' * depth}{node['path']}  {node['state']}  {node['sfClass']}")
    for child in node["children"]:
        _node(child, depth + 1)


def _leftovers(data: dict[str, Any], as_json: bool) -> int:
    found = data["leftovers"]
    code = EXIT_CLEANUP if any(item["entries"] or item["error"] for item in found) else EXIT_OK
    if as_json:
        common.print_json(data)
        return code
    if not found:
        print(f"no leftovers on {data['host']}")
    for item in found:
        print(f"{item['application']}  ({item['directory']})")
        for entry in item["entries"]:
            print(f"  {entry['what']}")
        if item["error"]:
            print(f"  cannot read: {item['error']}")
        if not item["entries"] and not item["error"]:
            print("  nothing recorded is left")
        print(f"  clean it: {item['clean']}")
    return code


def _clean(data: dict[str, Any], as_json: bool) -> int:
    if as_json:
        common.print_json(data)
        return int(data["exit"])
    for line in data["done"]:
        print(f"{data['application']}: {line}")
    for line in data["left"]:
        print(f"{data['application']}: left: {line}")
    if data["exit"] == EXIT_OK:
        print(f"{data['application']}: clean")
    return int(data["exit"])


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
