"""``sfterminate HOST NAME``: terminate application NAME (or its component ``NAME:path``) on
HOST's daemon and wait until every part is gone.

Exit 0 once terminated (its cleanup done), 1 an unknown application, 4 no daemon reachable,
5 ``--timeout`` ran out, 6 some cleanup failed (listed). ``--abnormal`` terminates with an
abnormal record; ``--detach`` first detaches a component from its parent (the rest of the
application keeps running); ``--no-wait`` returns once the daemon has accepted the request.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_OK, run_command


def _main(argv: Sequence[str] | None) -> int:
    parser = common.parser("sfterminate", "Terminate application NAME (or NAME:component) on "
                           "the daemon of HOST and wait until it is gone.")
    parser.add_argument("name", metavar="NAME", help="application, or application:component")
    parser.add_argument("--abnormal", action="store_true", help="terminate abnormally")
    parser.add_argument("--detach", action="store_true",
                        help="detach the component from its parent first")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the end")
    parser.add_argument("--reason", metavar="TEXT", help="the termination record's description")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="stop waiting after SECONDS (exit 5; the termination goes on)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print state changes")
    args = parser.parse_args(argv)
    with common.connect(args) as client:
        started = client.terminate(args.name, args.abnormal, args.detach, args.reason,
                                   uuid.uuid4().hex)
        if args.no_wait:
            if args.json:
                common.print_json(started)
            return EXIT_OK
        view = common.follow(client, started["operation"], timeout=args.timeout,
                             quiet=args.quiet, prog="sfterminate")
        outcome = view["outcome"]
        code = common.report(outcome, "sfterminate")
        if args.json:
            common.print_json({**outcome, "operation": started["operation"]})
        elif code == EXIT_OK:
            print(f"{args.name} terminated on {args.host}")
        return code


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
