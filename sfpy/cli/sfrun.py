"""``sfrun FILE``: deploy a description in this process and wait until it terminates.

Resolves the description, checks every sfClass, builds the tree, deploys every component,
starts every component, and prints each state change on stderr as it happens::

    sfConfig:vm1  DEPLOYED  0.42s
    sfConfig:disk  running mkfs.ext4 (pid 4242)  3.10s
    waiting for sfConfig:f2 terminateScript (pid 4243), 12 s

(a ``running`` line when a component's long work has gone on for a second, the time it
began; ``waiting for`` lines every 5 s while termination waits for some work).

Every run keeps a journal of its side effects (processes, files, ...) in its run directory
(``--run-dir``, default ``$XDG_RUNTIME_DIR/sfpy/runs/RUN``, ``/run/sfpy/runs/RUN`` for root,
else a per-user folder in the temp directory), locked while the run lives, removed when it
ends clean. ``sfrun --recover`` cleans what dead runs left (see docs/operations.md).

Exit codes: 0 the application terminated normally (by itself, ``--terminate-after``,
Ctrl-C, SIGTERM or SIGHUP, which terminate it cleanly); 1 it failed or terminated abnormally
(the termination record is printed; a Timeout component that fired is one); 2 usage; 3 the
description is wrong (nothing deployed); 5 ``--timeout`` ran out (the application was
terminated); 6 some cleanup failed or was stopped by its bound, or something the run made is
left (listed; this wins over 1 and 5). A second Ctrl-C/SIGTERM/SIGHUP stops every process group
the run started, names what may be left, and exits 6 without running terminate hooks.
``sfrun --recover``: 0 when every dead run is clean, 6 when something is left (listed).

When sfConfig has terminated, every other application left in the process (one a ``Run``
deployed, a detached subtree) is terminated too, its terminate hooks run, before sfrun exits
(exit 6 if one is still terminating after 30 s, or the terminate timeout if longer).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sfpy.cli.common import (
    EXIT_CLEANUP,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    ArgumentParser,
    add_description_options,
    run_command,
)

APP_NAME = "sfConfig"
#: Seconds sfrun waits for the other applications of the process to terminate at the end.
SHUTDOWN_TIMEOUT = 30.0
#: Default bound (seconds) of each component's terminate work (``--terminate-timeout``).
TERMINATE_TIMEOUT = 60.0
#: Work that has gone on this long (seconds) gets a ``running`` line.
LONG_ACTIVITY = 1.0
#: Seconds between ``waiting for`` lines while termination waits.
PROGRESS_INTERVAL = 5.0
#: Seconds between SIGTERM and SIGKILL when a second signal stops every process group.
EMERGENCY_GRACE = 2.0
#: The signals that ask for a clean termination (the second one stops at once).
TERMINATING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
            "terminates normally (also by --terminate-after, Ctrl-C, SIGTERM or SIGHUP), 1 when "
            "it fails or terminates abnormally, 3 when the description is wrong (nothing is "
            "deployed), 5 when --timeout ran out, 6 when some cleanup failed or something the "
            "run made is left. With --recover: clean what dead runs left."
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
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="the whole run may take SECONDS: then the application is terminated and sfrun "
        "exits 5",
    )
    parser.add_argument(
        "--terminate-timeout",
        type=_seconds,
        default=TERMINATE_TIMEOUT,
        metavar="SECONDS",
        help="bound of each component's terminate work (default %(default)g; a component's "
        "terminateTimeout attribute overrides it); work stopped by it is failed cleanup",
    )
    parser.add_argument(
        "--run-dir",
        metavar="DIR",
        help="keep this run's journal in DIR (default: a new folder under "
        "$XDG_RUNTIME_DIR/sfpy/runs, /run/sfpy/runs as root, else the temp directory); "
        "with --recover, the folder of run directories to recover",
    )
    parser.add_argument(
        "--recover",
        action="store_true",
        help="clean what dead runs left (their journals' open entries) and exit: 0 when all "
        "is clean, 6 when something is left; live runs are not touched",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only check the description as sfrun would before deploying (resolution, "
        "sfClasses) and exit 0, or 3 with the messages; deploys nothing",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print state changes")
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="also print the run directory and the components' own log messages",
    )
    parser.add_argument(
        "file", metavar="FILE", nargs="?", help="the .sf description whose sfConfig to deploy"
    )
    return parser


def _say(line: str) -> None:
    """A line on stderr; a terminal that went away (SIGHUP) is not an error of the run."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


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
            _say(line)


class _Progress:
    """What the run is waiting for, from ``process.activities()`` (each an ``Activity`` with
    ``path``, ``phase``, ``what``, ``since``): a ``running`` line once for each piece of work
    that has gone on for :data:`LONG_ACTIVITY` seconds, and while terminating a ``waiting
    for`` line for each every :data:`PROGRESS_INTERVAL` seconds."""

    def __init__(self, process: Any, began: float, quiet: bool) -> None:
        self.process = process
        self.began = began
        self.quiet = quiet
        self.seen: set[tuple[Any, ...]] = set()
        self.next_report = 0.0

    def tick(self, terminating: bool, now: float | None = None) -> None:
        activities: Callable[[], Any] | None = getattr(self.process, "activities", None)
        if self.quiet or activities is None:
            return
        try:
            current = list(activities())
        except Exception:  # noqa: BLE001 - progress must never break the run
            return
        now = time.monotonic() if now is None else now
        waiting = []
        for activity in current:
            if now - activity.since < LONG_ACTIVITY:
                continue
            if terminating or str(activity.phase).startswith("terminat"):
                waiting.append(activity)
                continue
            key = (activity.path, activity.phase, activity.what, activity.since)
            if key not in self.seen:
                self.seen.add(key)
                _say(
                    f"{activity.path}  running {activity.what}  "
                    f"{activity.since - self.began:.2f}s"
                )
        if waiting and now >= self.next_report:
            self.next_report = now + PROGRESS_INTERVAL
            for activity in waiting:
                _say(f"waiting for {activity.path} {activity.what}, {now - activity.since:.0f} s")


class _Signals:
    """SIGINT/SIGTERM/SIGHUP: the first asks for a clean termination; the second stops every
    process group the run started, names what may be left and exits 6 at once."""

    def __init__(self, emergency: Callable[[], list[str]] | None = None) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}
        self.emergency = emergency

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in TERMINATING_SIGNALS:
            self.previous[number] = signal.signal(number, self._handle)

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous.clear()

    def _handle(self, number: int, frame: Any) -> None:
        if self.received is None:
            self.received = number
            return
        _say(
            f"sfrun: {signal.Signals(number).name} again: stopping every process group the run "
            "started, without waiting for cleanup"
        )
        left: list[str] = []
        if self.emergency is not None:
            try:
                left = self.emergency()
            except Exception as error:  # noqa: BLE001 - exiting anyway: say it
                left = [f"stopping the process groups failed: {type(error).__name__}: {error}"]
        if left:
            _say("sfrun: may be left:")
            for line in left:
                _say(f"  {line}")
        os._exit(EXIT_CLEANUP)

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""


def _stop_all_groups(grace: float) -> list[str]:
    """Every process group the run started: the host layer's ``stop_all_groups`` when it is
    there; else the shell module's own last-resort stopper."""
    try:
        from sfpy.host.processes import stop_all_groups  # type: ignore[import-not-found]
    except ImportError:
        shell = sys.modules.get("sfpy.components.shell")
        stopper = getattr(shell, "_stop_everything_at_exit", None)
        if stopper is not None:
            stopper()
        return []
    return list(stop_all_groups(grace))


def _emergency(journal: Any, run_dir: Path) -> Callable[[], list[str]]:
    """The second signal: stop every group, then whatever process group the journal still
    has open (found by tag), and list what else the journal has open."""

    def stop() -> list[str]:
        from sfpy.host.journal import CleanupError, describe, stop_process_group_entry

        left = _stop_all_groups(EMERGENCY_GRACE)
        if journal is None:
            return left
        for entry in journal.open_entries():
            if entry.kind == "process-group":
                try:
                    stop_process_group_entry(entry, EMERGENCY_GRACE)
                    continue
                except CleanupError as error:
                    left.append(f"{describe(entry)}: {error}")
            else:
                left.append(describe(entry))
        if left:
            left.append(f"clean it with: sfrun --recover --run-dir {run_dir}")
        return left

    return stop


def _configure_logging(debug: bool, verbose: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("sfpy")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def default_runs_folder() -> Path:
    """Where run directories go: ``$XDG_RUNTIME_DIR/sfpy/runs``; ``/run/sfpy/runs`` as root;
    else ``sfpy-UID/runs`` in the temp directory (made 0700 and checked to be ours)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "sfpy" / "runs"
    if os.geteuid() == 0:
        return Path("/run/sfpy/runs")
    mine = Path(tempfile.gettempdir()) / f"sfpy-{os.geteuid()}"
    return _private_folder(mine) / "runs"


def _private_folder(path: Path) -> Path:
    from sfpy.host.journal import JournalError

    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as error:
        raise JournalError(f"cannot make the run folder {path}: {error}") from error
    if not os.path.isdir(path) or os.path.islink(path) or info.st_uid != os.geteuid():
        raise JournalError(f"{path} is not a folder of yours: give --run-dir")
    if info.st_mode & 0o077:
        raise JournalError(f"{path} may be written by others: give --run-dir")
    return path


def _recover(args: Any) -> int:
    from sfpy.host.journal import recover

    folder = Path(args.run_dir) if args.run_dir else default_runs_folder()
    reports = recover(folder)
    if not reports:
        print(f"no runs in {folder}")
        return EXIT_OK
    status = EXIT_OK
    for report in reports:
        name = f"run {report.run_id}"
        if report.live:
            print(f"{name}: live, not touched ({report.run_dir})")
            continue
        for line in report.done:
            print(f"{name}: {line}")
        if report.error:
            print(f"{name}: {report.error} ({report.run_dir})")
            status = EXIT_CLEANUP
        for line in report.left:
            print(f"{name}: left: {line}")
            status = EXIT_CLEANUP
        if report.clean and not report.done:
            print(f"{name}: nothing was left")
    if status != EXIT_OK:
        print("sfrun: some runs are not clean (listed above)", file=sys.stderr)
    return status


def _main(argv: Sequence[str] | None) -> int:
    began = time.monotonic()
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.debug, args.verbose)
    if args.recover:
        if args.file or args.check:
            parser.error("--recover takes no FILE and no --check")
        return _recover(args)
    if not args.file:
        parser.error("the following arguments are required: FILE")

    from sfpy.engine import DeploymentError, Process, TerminationRecord
    from sfpy.language import load

    sf_config = load(args.file, args.include_dirs)
    parse_time = time.monotonic() - began
    from sfpy.engine.deployer import attribute_warnings

    for warning in attribute_warnings(sf_config, APP_NAME):  # startScrpit: did you mean …?
        print(warning, file=sys.stderr)
    from sfpy.engine.placement import check_without_daemons

    check_without_daemons(sf_config, APP_NAME)  # sfProcessHost elsewhere: exit 3
    if args.check:
        Process("sfRunCheck").check(sf_config, APP_NAME)
        print(f"{args.file}: OK (resolved, every sfClass registered; nothing deployed)")
        return EXIT_OK

    journal, run_dir = _open_journal(args)
    process = Process(
        "sfRunProcess", journal=journal, terminate_timeout=args.terminate_timeout
    )
    try:
        process.check(sf_config, APP_NAME)  # an unknown sfClass: exit 3, nothing deployed
    except BaseException:
        journal.discard()
        raise
    process.add_observer(_StatePrinter(began, args.quiet, args.debug))
    progress = _Progress(process, began, args.quiet)

    signals = _Signals(_emergency(journal, run_dir))
    signals.install()
    outcome: dict[str, Any] = {}
    deployed = threading.Event()
    run_deadline = None if args.timeout is None else began + args.timeout
    timed_out = False

    def reason_to_stop() -> Any:
        """The record to terminate with, when a signal or --timeout says so."""
        nonlocal timed_out
        if signals.received is not None:
            return TerminationRecord.normal(f"sfrun received {signals.name}")
        if run_deadline is not None and time.monotonic() >= run_deadline:
            timed_out = True
            return TerminationRecord.abnormal(
                f"sfrun --timeout {args.timeout:g}: the run took too long", id=APP_NAME
            )
        return None

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
    finished = False
    try:
        thread.start()
        asked = False
        while not deployed.wait(0.1):
            progress.tick(asked)
            if not asked:
                record = reason_to_stop()
                app = process.application(APP_NAME)
                if record is not None and app is not None:
                    app.sf_terminate(record)
                    asked = True
        if "crash" in outcome:
            raise outcome["crash"]
        if "failure" in outcome:
            final = outcome["failure"].record
        else:
            app = outcome["app"]
            deadline = (
                None if args.terminate_after is None else time.monotonic() + args.terminate_after
            )
            while True:
                wait = 0.05
                if deadline is not None and not asked:
                    wait = max(0.0, min(wait, deadline - time.monotonic()))
                if app.wait_terminated(wait) is not None:
                    break
                progress.tick(asked)
                if asked:
                    continue
                record = reason_to_stop()
                if record is None and deadline is not None and time.monotonic() >= deadline:
                    record = TerminationRecord.normal(
                        f"sfrun --terminate-after {args.terminate_after:g}"
                    )
                if record is not None:
                    app.sf_terminate(record)
                    asked = True
            final = app.termination_record
        left = _shut_down(process, final, progress, args.terminate_timeout)
        leftovers = _finish_journal(journal, run_dir)
        finished = True
        return _report(final, process, args.debug, left, leftovers, timed_out, args.timeout)
    finally:
        process.scheduler.stop()
        signals.restore()
        if not finished:
            _close_journal(journal)


def _open_journal(args: Any) -> tuple[Any, Path]:
    from sfpy.host.journal import Journal, new_run_id

    run_id = new_run_id()
    run_dir = Path(args.run_dir) if args.run_dir else default_runs_folder() / run_id
    journal = Journal(run_dir, run_id=run_id)
    if args.verbose:
        where = "given" if args.run_dir else (
            "$XDG_RUNTIME_DIR" if os.environ.get("XDG_RUNTIME_DIR")
            else "/run/sfpy" if os.geteuid() == 0 else "the temp directory"
        )
        _say(f"sfrun: run {run_id}, run directory {run_dir} ({where})")
    return journal, run_dir


def _close_journal(journal: Any) -> None:
    """Leave a journal that has open entries for --recover; remove one that has none."""
    if journal.open_entries():
        journal.close()
    else:
        journal.discard()


def _finish_journal(journal: Any, run_dir: Path) -> list[str]:
    """The run is over: clean what its journal still has open (an effect whose undoing was
    not recorded), remove the run directory when nothing is left; return what is left."""
    from sfpy.host.journal import CleanupError, clean, describe

    left = []
    for entry in reversed(journal.open_entries()):  # newest first, as termination goes
        try:
            _say(f"sfrun: cleaned up after {entry.owner}: {clean(entry)}")
        except CleanupError as error:
            left.append(f"{describe(entry)}: {error}")
            continue
        journal.done(entry.id)
    if left:
        journal.close()
        left.append(f"clean it with: sfrun --recover --run-dir {run_dir}")
    else:
        journal.discard()
    return left


def _shut_down(process: Any, record: Any, progress: _Progress, terminate_timeout: float) -> list[str]:
    """Terminate whatever else the application left in the process (applications a Run
    started, detached subtrees), running their terminate hooks, before sfrun exits.

    Returns the names of those that did not finish terminating in time."""
    from sfpy.engine import TerminationRecord

    how = "normally" if record is None or record.is_normal else "abnormally"
    process.terminate_all(
        TerminationRecord.normal(f"sfrun: {APP_NAME} terminated {how}, the process ends")
    )
    deadline = time.monotonic() + max(SHUTDOWN_TIMEOUT, terminate_timeout + 5.0)
    done = False
    while not done and time.monotonic() < deadline:
        done = process.wait_empty(min(0.25, max(0.0, deadline - time.monotonic())))
        progress.tick(True)
    process.scheduler.stop()
    return [] if done else sorted(process.applications())


def _report(
    record: Any, process: Any, debug: bool, left: Sequence[str] = (),
    leftovers: Sequence[str] = (), timed_out: bool = False, timeout: float | None = None,
) -> int:
    if left:
        _say(f"sfrun: still terminating when sfrun gave up: {', '.join(left)}")
    if process.cleanup_failures:
        _say("sfrun: cleanup failed in:")
        for path, message in process.cleanup_failures:
            _say(f"  {path}: {message}")
    if leftovers:
        _say("sfrun: left behind by the run:")
        for line in leftovers:
            _say(f"  {line}")
    incomplete = bool(left or process.cleanup_failures or leftovers)
    if timed_out:
        _say(f"sfrun: timed out after {timeout:g}s; {APP_NAME} was terminated")
        return EXIT_CLEANUP if incomplete else EXIT_TIMEOUT
    if record is None or not record.is_normal:
        _say(f"sfrun: {APP_NAME} terminated abnormally")
        _say(str(record))
        if debug and record is not None and record.cause is not None:
            try:
                traceback.print_exception(record.cause, file=sys.stderr)
            except OSError:
                pass
        return EXIT_CLEANUP if incomplete else EXIT_FAILED
    _say(f"sfrun: {APP_NAME} terminated normally: {record.description}")
    return EXIT_CLEANUP if incomplete else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
