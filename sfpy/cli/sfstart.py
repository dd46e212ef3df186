"""``sfstart HOST NAME FILE``: deploy a description as application NAME on HOST's daemon.

The description is resolved here (a wrong description never reaches a daemon: exit 3), sent
in its JSON form, and the deployment is followed: each component's state changes are printed
on stderr as ``sfrun`` prints them. Exit 0 once the application runs, 1 after a deployment
that failed (and was cleaned up) or a refusal (the name is in use), 3 the description is
wrong, 4 no daemon reachable or refused (version), 5 ``--timeout`` ran out (the deployment
goes on), 6 cleanup incomplete. A dropped connection is opened again and the same request
(by its request id) followed to its own outcome.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_OK, add_description_options, run_command


def _main(argv: Sequence[str] | None) -> int:
    began = time.monotonic()
    parser = common.parser(
        "sfstart", "Deploy the sfConfig of FILE as application NAME on the daemon of HOST and "
        "follow it until it runs (exit 0) or failed and was cleaned up (exit 1).",
        debug=False,
    )
    add_description_options(parser)
    parser.add_argument("name", metavar="NAME", help="the application's name on HOST")
    parser.add_argument("file", metavar="FILE", help="the .sf description whose sfConfig to deploy")
    parser.add_argument("--dry-run", action="store_true",
                        help="resolve, print which host would run which component, check the "
                        "host answers; deploy nothing")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="stop following after SECONDS (exit 5; the deployment goes on)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print state changes")
    args = parser.parse_args(argv)

    from sfpy.engine.deployer import attribute_warnings, check_description
    from sfpy.language import load
    from sfpy.language.unparse import to_json

    sf_config = load(args.file, args.include_dirs)
    check_description(sf_config, args.name)  # an unknown sfClass: exit 3, nothing sent
    for warning in attribute_warnings(sf_config, args.name):
        print(warning, file=sys.stderr)
    text = to_json(sf_config)
    client = common.connect(args)
    with client:
        if args.dry_run:
            placement = _placement(sf_config, args.name, client.server.get("host", args.host))
            if args.json:
                common.print_json({"host": args.host, "placement": placement, "calls": client.calls})
            else:
                for path, host in placement:
                    print(f"{path}  {host}")
            return EXIT_OK
        request = uuid.uuid4().hex
        started = client.deploy(args.name, text, request)
        view = common.follow(client, started["operation"], timeout=args.timeout,
                             quiet=args.quiet, prog="sfstart")
        outcome = view["outcome"]
        code = common.report(outcome, "sfstart")
        if args.json:
            common.print_json({**outcome, "operation": started["operation"],
                               "calls": client.calls,
                               "seconds": round(time.monotonic() - began, 3)})
        elif code == EXIT_OK:
            print(outcome.get("message", ""))
        return code


def _placement(description: object, name: str, host: str) -> list[tuple[str, str]]:
    """Every component of the tree and the host that would run it: HOST's daemon, or the
    ``sfProcessHost`` of the nearest placed subtree above it (as written)."""
    from sfpy.language.model import ComponentDescription

    out: list[tuple[str, str]] = []
    stack = [(description, name, host)]
    while stack:
        cd, path, where = stack.pop()
        placed = cd.get("sfProcessHost")  # type: ignore[attr-defined]
        if isinstance(placed, str) and path != name:
            where = placed
        out.append((path, where))
        children = [
            (value, f"{path}:{key}", where) for key, value in cd.items()  # type: ignore[attr-defined]
            if isinstance(value, ComponentDescription) and value.eager
        ]
        stack.extend(reversed(children))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
