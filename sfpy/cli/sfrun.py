"""``sfrun FILE``: deploy a description in this process and wait until it terminates.

Resolves the description, checks every sfClass, builds the tree, deploys every component,
starts every component, and prints each state change on stderr as it happens::

    sfConfig:vm1  DEPLOYED  0.42s

Exit codes: 0 the application terminated normally (by itself, ``--terminate-after``,
Ctrl-C or SIGTERM, which terminate it cleanly); 1 it failed or terminated abnormally (the
termination record is printed); 2 usage; 3 the description is wrong (nothing deployed);
6 terminated, but some component's cleanup failed (listed). A second Ctrl-C exits at once
with 6, without waiting for cleanup.

When sfConfig has terminated, every other application left in the process (one a ``Run``
deployed, a detached subtree) is terminated too, its terminate hooks run, before sfrun exits
(exit 6 if one is still terminating after 30 s).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

from sfpy.cli.common import (
    EXIT_CLEANUP,
    EXIT_FAILED,
    EXIT_OK,
    ArgumentParser,
    add_description_options,
    run_command,
)

APP_NAME = "sfConfig"
#: Seconds sfrun waits for the other applications of the process to terminate at the end.
SHUTDOWN_TIMEOUT = 30.0


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text!r}")
    return value


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="sfrun",
        description=(
            "Deploy a SmartFrog description in this process (build the sfConfig tree, deploy "
            "every component, then start every component), print each component's state "
            "changes on stderr, and wait until the application terminates. Exit 0 when it "
            "terminates normally (also by --terminate-after, Ctrl-C or SIGTERM), 1 when it "
            "fails or terminates abnormally, 3 when the description is wrong (nothing is "
            "deployed), 6 when some cleanup failed."
        ),
    )
    add_description_options(parser)
    parser.add_argument(
        "--terminate-after",
        type=_seconds,
        metavar="SECONDS",
        help="terminate the application normally SECONDS after everything has started "
        "(0: as soon as everything has started)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print state changes")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print the components' own log messages"
    )
    parser.add_argument("file", metavar="FILE", help="the .sf description whose sfConfig to deploy")
    return parser


class _StatePrinter:
    """The observer: one line per state change, elapsed time since sfrun started."""

    def __init__(self, began: float, quiet: bool, debug: bool) -> None:
        self.began = began
        self.quiet = quiet
        self.debug = debug
        self.lock = threading.Lock()

    def __call__(self, component: Any, state: Any) -> None:
        from sfpy.engine import State

        if self.quiet or (state is State.CONSTRUCTED and not self.debug):
            return
        path = component.sf_complete_name()
        line = f"{path}  {state.name}  {time.monotonic() - self.began:.2f}s"
        record = component.termination_record
        if (
            state is State.TERMINATED
            and record is not None
            and record.id == path
            and not record.is_normal
        ):
            line += f"  {record.type}: {record.description}"
        with self.lock:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


class _Signals:
    """SIGINT/SIGTERM: the first asks for a clean termination, the second exits at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self._handle)

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: Any) -> None:
        if self.received is None:
            self.received = number
            return
        sys.stderr.write("sfrun: interrupted again: exiting without waiting for cleanup\n")
        sys.stderr.flush()
        os._exit(EXIT_CLEANUP)

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""


def _configure_logging(debug: bool, verbose: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("sfpy")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _main(argv: Sequence[str] | None) -> int:
    began = time.monotonic()
    args = build_parser().parse_args(argv)
    _configure_logging(args.debug, args.verbose)

    from sfpy.engine import DeploymentError, Process, TerminationRecord
    from sfpy.language import load

    sf_config = load(args.file, args.include_dirs)
    parse_time = time.monotonic() - began

    process = Process("sfRunProcess")
    process.check(sf_config, APP_NAME)  # an unknown sfClass: exit 3, nothing deployed
    process.add_observer(_StatePrinter(began, args.quiet, args.debug))

    signals = _Signals()
    signals.install()
    outcome: dict[str, Any] = {}
    deployed = threading.Event()

    def deploy() -> None:
        try:
            outcome["app"] = process.deploy(sf_config, APP_NAME, parse_time=parse_time)
        except DeploymentError as error:
            outcome["failure"] = error
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            outcome["crash"] = error
        finally:
            deployed.set()

    thread = threading.Thread(target=deploy, name="sfrun-deploy", daemon=True)
    try:
        thread.start()
        asked = False
        while not deployed.wait(0.1):
            if signals.received is not None and not asked:
                app = process.application(APP_NAME)
                if app is not None:
                    app.sf_terminate(TerminationRecord.normal(f"sfrun received {signals.name}"))
                    asked = True
        if "crash" in outcome:
            raise outcome["crash"]
        if "failure" in outcome:
            left = _shut_down(process, outcome["failure"].record)
            return _report(outcome["failure"].record, process, args.debug, left)

        app = outcome["app"]
        deadline = None if args.terminate_after is None else time.monotonic() + args.terminate_after
        while True:
            wait = 0.05
            if deadline is not None and not asked:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            if app.wait_terminated(wait) is not None:
                break
            if asked:
                continue
            if signals.received is not None:
                app.sf_terminate(TerminationRecord.normal(f"sfrun received {signals.name}"))
                asked = True
            elif deadline is not None and time.monotonic() >= deadline:
                app.sf_terminate(
                    TerminationRecord.normal(f"sfrun --terminate-after {args.terminate_after:g}")
                )
                asked = True
        left = _shut_down(process, app.termination_record)
        return _report(app.termination_record, process, args.debug, left)
    finally:
        process.scheduler.stop()
        signals.restore()


def _shut_down(process: Any, record: Any) -> list[str]:
    """Terminate whatever else the application left in the process (applications a Run
    started, detached subtrees), running their terminate hooks, before sfrun exits.

    Returns the names of those that did not finish terminating in time."""
    from sfpy.engine import TerminationRecord

    how = "normally" if record is None or record.is_normal else "abnormally"
    done = process.shutdown(
        SHUTDOWN_TIMEOUT,
        TerminationRecord.normal(f"sfrun: {APP_NAME} terminated {how}, the process ends"),
    )
    return [] if done else sorted(process.applications())


def _report(record: Any, process: Any, debug: bool, left: Sequence[str] = ()) -> int:
    if left:
        print(
            f"sfrun: still terminating after {SHUTDOWN_TIMEOUT:g}s: {', '.join(left)}",
            file=sys.stderr,
        )
    if process.cleanup_failures:
        print("sfrun: cleanup failed in:", file=sys.stderr)
        for path, message in process.cleanup_failures:
            print(f"  {path}: {message}", file=sys.stderr)
    if record is None or not record.is_normal:
        print(f"sfrun: {APP_NAME} terminated abnormally", file=sys.stderr)
        print(str(record), file=sys.stderr)
        if debug and record is not None and record.cause is not None:
            traceback.print_exception(record.cause, file=sys.stderr)
        return EXIT_FAILED
    print(f"sfrun: {APP_NAME} terminated normally: {record.description}", file=sys.stderr)
    return EXIT_CLEANUP if process.cleanup_failures or left else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
