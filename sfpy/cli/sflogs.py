"""``sflogs HOST NAME [COMPONENT]``: a component's command log, read through the daemon.

The daemon keeps one log per application in its state directory: every command the host
layer ran for a component (its command line, each output line, its exit code) and every
state change, so nobody needs ssh to a server to see what a component did. The log
outlives the application (until its name is deployed again) and the daemon (a restarted
daemon still serves it).

    sflogs HOST web                    the last 50 lines of application web
    sflogs HOST web vm1:disk -n 200    the last 200 lines about vm1:disk (and below it)
    sflogs HOST web --follow           then every new line, until Ctrl-C

Lines: ``TIME LEVEL COMPONENT MESSAGE`` (UTC). Exit 0; 1 no such application or log;
4 no daemon reachable; 130 Ctrl-C while following.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_OK, run_command
from sfpy.cli.sfmanage import component_path

#: Seconds one follow long-poll waits on the daemon.
FOLLOW_WAIT = 10.0


def _main(argv: Sequence[str] | None) -> int:
    parser = common.parser("sflogs", "Print the command log of application NAME (or of its "
                           "COMPONENT and what is below it) kept by the daemon of HOST.")
    parser.add_argument("name", metavar="NAME", help="the application")
    parser.add_argument("component", metavar="COMPONENT", nargs="?",
                        help="vm1:disk or sfConfig:vm1:disk (default: the whole application)")
    parser.add_argument("-n", "--lines", type=int, default=50, metavar="N",
                        help="how many of the last lines to print first (default %(default)s)")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing new lines as they come (Ctrl-C to stop)")
    args = parser.parse_args(argv)
    if args.lines < 0:
        parser.error("--lines must be >= 0")
    component = None if args.component is None else component_path(args.name, args.component)
    with common.connect(args) as client:
        result = client.logs(args.name, component, None, args.lines, 0)
        _emit(result, args.json)
        while args.follow:
            result = client.logs(args.name, component, result["next"], 10_000, FOLLOW_WAIT)
            _emit(result, args.json)
    return EXIT_OK


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        import json

        for line in result["lines"]:
            print(json.dumps({"application": result["application"], "line": line}), flush=True)
        return
    for line in result["lines"]:
        print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
