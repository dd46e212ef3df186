"""``sfdiagnostics HOST``: what HOST's daemon says about itself: versions, uptime, load and
memory, applications, recent errors, and what it recovered when it started; and the TLS
side: which certificate, key and CA this client used (and where it found each), the
daemon's certificate, and the subject and roles the daemon sees for this client.

Exit 0; 4 no daemon reachable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_OK, run_command


def _main(argv: Sequence[str] | None) -> int:
    parser = common.parser("sfdiagnostics", "Show the state of the daemon of HOST.")
    args = parser.parse_args(argv)
    with common.connect(args) as client:
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
    if data["errors"]:
        print("recent errors:")
        for error in data["errors"]:
            print(f"  {error['application']}: {error['path'] or '-'}: {error['message']}")
    if data["recovery"]:
        print("recovery at start:")
        for line in data["recovery"]:
            print(f"  {line}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
