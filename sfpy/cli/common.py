"""What every sfpy command shares: include options, error reporting, exit codes.

Exit codes (design.md §4): 0 success; 1 the action failed; 2 usage; 3 the description is
wrong; 4 daemon unreachable or refused; 5 timed out; 6 cleanup incomplete.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from sfpy.errors import SfpyError
from sfpy.language.errors import DescriptionError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DESCRIPTION = 3
EXIT_UNREACHABLE = 4
EXIT_TIMEOUT = 5
EXIT_CLEANUP = 6


def installed_version() -> str:
    """The version of the installed sfpy distribution (the package's own when not installed)."""
    try:
        return metadata.version("sfpy")
    except metadata.PackageNotFoundError:
        from sfpy import __version__

        return __version__


class ArgumentParser(argparse.ArgumentParser):
    """argparse for every sfpy command: ``--version``, and exit 2 with one clear line on a usage
    error (argparse's default too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--version",
            action="version",
            version=f"{self.prog} {installed_version()}",
            help="print the command's name and sfpy's version, then exit",
        )

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_description_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-I",
        dest="include_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="also look for #include files in DIR (after the including file's folder; repeatable)",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")


def run_command(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command's body; turn every error into a message and an exit code, never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return main(argv)
    except DescriptionError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_DESCRIPTION
    except SfpyError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAILED
    except RecursionError:
        if debug:
            traceback.print_exc()
        print("error: the description is nested or linked too deeply to process", file=sys.stderr)
        return EXIT_DESCRIPTION
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - the last line of defence
        if debug:
            traceback.print_exc()
        print(
            f"internal error: {type(error).__name__}: {error} (run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_FAILED
