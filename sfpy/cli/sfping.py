"""``sfping HOST [NAME]``: does HOST's daemon answer (and does application NAME live there)?

Exit 0 it answers (NAME is there and not terminated); 1 NAME is unknown or terminated; 4 no
daemon reachable, or one of another API version.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_OK, run_command


def _main(argv: Sequence[str] | None) -> int:
    parser = common.parser("sfping", "Check that the daemon of HOST answers, and that "
                           "application NAME lives there.")
    parser.add_argument("name", metavar="NAME", nargs="?", help="application (or app:component)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    with common.connect(args) as client:
        result = client.ping(args.name)
    result["seconds"] = round(time.perf_counter() - began, 4)
    if args.json:
        common.print_json(result)
    elif args.name:
        print(f"{args.name} on {args.host}: {result['state']} ({result['seconds'] * 1000:.1f} ms)")
    else:
        print(f"{args.host}: alive, up {result['uptime']:.0f} s ({result['seconds'] * 1000:.1f} ms)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
