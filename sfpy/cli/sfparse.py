"""``sfparse FILE``: resolve a description and print its sfConfig, or say what is wrong."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from sfpy.cli.common import EXIT_OK, ArgumentParser, add_description_options, run_command


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="sfparse",
        description=(
            "Parse and resolve a SmartFrog description (phases type, place, function, sfConfig, link) "
            "and print the resolved sfConfig. Exit 0 when it resolves, 3 when the description is wrong."
        ),
    )
    add_description_options(parser)
    parser.add_argument("--json", action="store_true", help="print the resolved description as JSON")
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="report files read and time per step on stderr"
    )
    parser.add_argument("file", metavar="FILE", help="the .sf description to resolve")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from sfpy.language import parse_file, resolve
    from sfpy.language.unparse import to_json, to_sf

    started = time.perf_counter()
    root = parse_file(args.file, args.include_dirs)
    parsed = time.perf_counter()
    sf_config = resolve(root)
    resolved = time.perf_counter()
    text = to_json(sf_config) if args.json else to_sf(sf_config)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.verbose:
        print(
            f"sfparse: {args.file}: parsed in {(parsed - started) * 1000:.1f} ms, "
            f"resolved in {(resolved - parsed) * 1000:.1f} ms",
            file=sys.stderr,
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
