"""``sfdaemon``: the root process of a host, serving ``rootProcess`` over Pyro5.

Runs in the foreground (a service manager or a test supervises it; it never forks itself
away). On start it cleans what dead previous incarnations left in its state directory
(their applications' journals), then listens and prints one ``ready`` line on stderr.
SIGTERM or SIGINT stop it cleanly: the applications are terminated (``on_stop: terminate``,
the default) or left for the next incarnation's recovery (``on_stop: leave``).

Until TLS is configured (the next step) a daemon listens on loopback addresses only, and
only when ``--insecure`` says that the connection is neither encrypted nor authenticated.

Every log line names the application and the component it is about (``-`` for the daemon).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sfpy.cli.common import EXIT_FAILED, EXIT_OK, ArgumentParser, run_command
from sfpy.errors import SfpyError

DEFAULT_STATE_DIR = "/var/lib/sfpy/daemon"
CONFIG_KEYS = {"host", "port", "state_dir", "log_level", "on_stop", "terminate_timeout", "hosts",
               "insecure", "name"}


class ConfigError(SfpyError):
    exit_code = 2


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="sfdaemon",
        description="The sfpy daemon of this host: holds applications by name, deploys what "
        "sfstart sends, answers sflist, sfping, sfterminate, sfdiagnostics, sfstopdaemon. "
        "Runs in the foreground; SIGTERM/SIGINT stop it cleanly.",
    )
    parser.add_argument("--host", metavar="ADDRESS", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, metavar="PORT", help="listen port (default 3800)")
    parser.add_argument("--state-dir", metavar="DIR",
                        help=f"journals of the applications (default {DEFAULT_STATE_DIR})")
    parser.add_argument("--config", metavar="FILE", help="YAML configuration (daemon/sfdaemon.yaml)")
    parser.add_argument("--insecure", action="store_true",
                        help="serve without TLS (loopback addresses only): required until TLS "
                        "is configured")
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO (default), WARNING")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    return parser


def load_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    unknown = set(data) - CONFIG_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(sorted(map(str, unknown)))} "
                          f"(known: {', '.join(sorted(CONFIG_KEYS))})")
    return data


class _Context(logging.Filter):
    """Gives every record ``app`` and ``component`` (``-`` when it is about neither)."""

    def filter(self, record: logging.LogRecord) -> bool:
        component = getattr(record, "component", None)
        if component is not None and not isinstance(component, str):
            try:
                component = component.sf_complete_name()
            except Exception:  # noqa: BLE001
                component = str(component)
        name = component or "-"
        app = getattr(record, "app", None)
        if not app:
            app = name.split(":", 1)[0] if name != "-" else "-"
        record.__dict__.update(component=name, app=app)
        return True


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Context())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s app=%(app)s component=%(component)s %(name)s: %(message)s"
    ))
    handler.setLevel(getattr(logging, level.upper(), logging.INFO))
    root = logging.getLogger("sfpy")
    root.handlers[:] = [handler]
    # INFO at least: the per-application command logs (sflogs) want every command line
    root.setLevel(min(handler.level, logging.INFO))
    root.propagate = False


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = load_config(args.config)
    host = args.host or config.get("host") or "127.0.0.1"
    port = args.port or int(config.get("port") or 3800)
    state_dir = Path(args.state_dir or config.get("state_dir") or DEFAULT_STATE_DIR)
    insecure = args.insecure or config.get("insecure") is True
    level = args.log_level or str(config.get("log_level") or "INFO")
    on_stop = str(config.get("on_stop") or "terminate")
    from sfpy.cli.hosts import check_map

    check_map(config.get("hosts"), f"{args.config}: hosts")  # used by sfProcessHost placement
    if on_stop not in ("terminate", "leave"):
        raise ConfigError(f"on_stop must be terminate or leave, not {on_stop!r}")
    _configure_logging(level)

    from sfpy.engine import remote
    from sfpy.engine.rootprocess import RootProcess

    if not insecure:
        print("sfdaemon: TLS is not available yet: run with --insecure on a loopback "
              "address (127.0.0.0/8, ::1)", file=sys.stderr)
        return EXIT_FAILED
    if not remote.is_loopback(host):
        print(f"sfdaemon: {host} is not a loopback address: without TLS sfdaemon listens on "
              "loopback addresses only", file=sys.stderr)
        return EXIT_FAILED
    root = RootProcess(
        state_dir, host=str(config.get("name") or host), address=f"{host}:{port}",
        on_stop=on_stop, terminate_timeout=float(config.get("terminate_timeout") or 60.0),
    )
    log = logging.getLogger("sfpy.daemon")
    root.enable_app_logs()
    for line in root.recover():
        print(f"sfdaemon: recovery: {line}", file=sys.stderr)

    def on_signal(number: int, frame: Any) -> None:
        log.info("%s received: stopping", signal.Signals(number).name, extra={"app": "-"})
        root.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(uri: str) -> None:
        print(f"sfdaemon: ready {uri} (state dir {state_dir}, pid {os.getpid()})",
              file=sys.stderr, flush=True)

    try:
        remote.serve(root, host, port, ready=ready)
    finally:
        root.close()
    # the stop thread has finished terminating; other threads are daemon threads
    log.info("stopped", extra={"app": "-"})
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
