"""``sfparse FILE``: resolve a description and print its sfConfig, or say what is wrong.

``FILE`` may be ``-``: the description is read from standard input and its includes are looked
up from the current directory (where a file's would be looked up from its own folder).
``--tree`` prints only the component tree, to see what ``sfrun`` would deploy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sfpy.cli.common import EXIT_OK, ArgumentParser, add_description_options, run_command
from sfpy.language.errors import DescriptionError
from sfpy.language.model import ComponentDescription

STDIN = "-"
STDIN_NAME = "<stdin>"  # how messages name a description read from standard input


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="sfparse",
        description=(
            "Parse and resolve a SmartFrog description (phases type, place, function, sfConfig, link) "
            "and print the resolved sfConfig. Exit 0 when it resolves, 3 when the description is wrong."
        ),
    )
    add_description_options(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the resolved description as JSON")
    output.add_argument(
        "--tree",
        action="store_true",
        help="print only the component tree: each component's name and sfClass, nested "
        "(schemas and plain values left out)",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="report files read and time per step on stderr"
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        help="the .sf description to resolve; '-' reads it from standard input "
        "(its includes are then looked up from the current directory)",
    )
    return parser


def _read_stdin() -> str:
    """The description on standard input, refused whole when larger than the parser's limit."""
    from sfpy.language.parser import MAX_TOTAL_BYTES

    data = sys.stdin.buffer.read(MAX_TOTAL_BYTES + 1)
    if len(data) > MAX_TOTAL_BYTES:
        raise DescriptionError(
            f"{STDIN_NAME}: description too large: more than "
            f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB (sfpy's limit)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DescriptionError(
            f"{STDIN_NAME}: not UTF-8 text at byte {error.start} (descriptions are read as UTF-8)"
        ) from None


def tree_lines(sf_config: ComponentDescription, name: str = "sfConfig") -> Iterator[str]:
    """One line per component, indented by depth: ``name: sfClass``.

    A component is an eager description with an ``sfClass``, as ``sfrun`` deploys them. LAZY
    and DATA descriptions (templates, data), schemas (ASSERTs once resolved) and plain values
    are not components, and are left out.
    """
    stack: list[tuple[str, ComponentDescription, int]] = [(name, sf_config, 0)]
    while stack:  # iterative: nesting may be deep
        label, cd, depth = stack.pop()
        yield f"{'  ' * depth}{label}: {_class_text(cd)}"
        children = [
            (str(key), value, depth + 1)
            for key, value in cd.attributes.items()
            if _is_component(value)
        ]
        stack.extend(reversed(children))


def _is_component(value: Any) -> bool:
    return isinstance(value, ComponentDescription) and value.eager and "sfClass" in value.attributes


def _class_text(cd: ComponentDescription) -> str:
    if "sfClass" not in cd.attributes:
        return "(no sfClass)"
    value = cd.attributes["sfClass"]
    if isinstance(value, str):
        return value
    from sfpy.language.unparse import value_text

    return value_text(value)


def _print_warnings(sf_config: ComponentDescription) -> None:
    """Misspelled attribute names (``startScrpit``: did you mean ``startScript``?), as ``sfrun``
    and ``sfstart`` print them: a description that parses is not yet one that does what it says.
    The component classes come from the engine's registry, imported only here."""
    from sfpy.engine.deployer import attribute_warnings

    for warning in attribute_warnings(sf_config, "sfConfig"):
        print(warning, file=sys.stderr)


def _show_stdin_lines(error: DescriptionError, source: str) -> None:
    """Give errors in the standard input their line of text (there is no file to read it from)."""
    lines = source.splitlines()
    for each in error.all():
        position = each.position
        if position is not None and position.file == STDIN_NAME and 0 < position.line <= len(lines):
            each._source_line = lines[position.line - 1]


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from sfpy.language import parse_file, parse_text, resolve
    from sfpy.language.unparse import to_json, to_sf

    started = time.perf_counter()
    source = _read_stdin() if args.file == STDIN else None
    try:
        if source is not None:
            root = parse_text(source, STDIN_NAME, args.include_dirs)
        else:
            root = parse_file(args.file, args.include_dirs)
        parsed = time.perf_counter()
        sf_config = resolve(root)
    except DescriptionError as error:
        if source is not None:
            _show_stdin_lines(error, source)
        raise
    resolved = time.perf_counter()
    _print_warnings(sf_config)
    if args.tree:
        text = "\n".join(tree_lines(sf_config))
    elif args.json:
        text = to_json(sf_config)
    else:
        text = to_sf(sf_config)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.verbose:
        print(
            f"sfparse: {STDIN_NAME if args.file == STDIN else args.file}: parsed in "
            f"{(parsed - started) * 1000:.1f} ms, resolved in {(resolved - parsed) * 1000:.1f} ms",
            file=sys.stderr,
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
