"""``sfdaemon``: the root process of a host, serving ``rootProcess`` over Pyro5.

Runs in the foreground (a service manager or a test supervises it; it never forks itself
away). On start it re-adopts the applications a killed previous incarnation had running, or
cleans what they left (``on_restart``, docs/operations.md), then listens and prints one
``ready`` line on stderr. SIGTERM or SIGINT stop it cleanly: the applications are terminated (``on_stop: terminate``,
the default) or left for the next incarnation's recovery (``on_stop: leave``).

Every connection is TLS with client certificates checked against the site CA (``--cert``,
``--key``, ``--ca``; ``sfpy-ca`` makes them), and the configuration's ``roles`` say which
certificate subjects may deploy, read or manage. ``--insecure`` (plain TCP, anyone local may
do anything) is allowed on loopback addresses only.

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
CONFIG_KEYS = {"host", "port", "state_dir", "log_level", "on_stop", "on_restart",
               "terminate_timeout", "hosts", "insecure", "name", "cert", "key", "ca", "roles"}
#: Test mode only (with SFPY_TEST_MODE=1): the daemon kills itself with SIGKILL right after
#: its Nth journal write, so tests can crash it between any two writes of a deployment.
CRASH_VARIABLE = "SFPY_TEST_CRASH_AFTER_JOURNAL_WRITES"


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
    parser.add_argument("--cert", metavar="FILE", help="this daemon's certificate (PEM; "
                        "sfpy-ca issue daemon HOST), naming its host")
    parser.add_argument("--key", metavar="FILE", help="its private key (mode 0600)")
    parser.add_argument("--ca", metavar="FILE", help="the site CA's certificate (ca.pem): "
                        "clients and peer daemons must hold a certificate it signed")
    parser.add_argument("--insecure", action="store_true",
                        help="serve plain TCP without TLS: loopback addresses only, anyone "
                        "local may do anything")
    parser.add_argument("--on-restart", choices=("adopt", "clean"),
                        help="what to do with the applications a killed previous daemon held: "
                        "adopt (default: take back those whose components all can, clean the "
                        "rest) or clean (clean them all)")
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
    insecure = (args.insecure or config.get("insecure") is True
                or os.environ.get("SFPY_INSECURE", "").strip().lower() in ("1", "true", "yes", "on"))
    level = args.log_level or str(config.get("log_level") or "INFO")
    on_stop = str(config.get("on_stop") or "terminate")
    on_restart = str(args.on_restart or config.get("on_restart") or "adopt")
    if on_restart not in ("adopt", "clean"):
        raise ConfigError(f"on_restart must be adopt or clean, not {on_restart!r}")
    from sfpy.cli.hosts import check_map

    check_map(config.get("hosts"), f"{args.config}: hosts")  # used by sfProcessHost placement
    if on_stop not in ("terminate", "leave"):
        raise ConfigError(f"on_stop must be terminate or leave, not {on_stop!r}")
    _configure_logging(level)

    from sfpy.engine import remote
    from sfpy.engine.rootprocess import RootProcess

    files, access = _security(args, config, insecure)
    if files is None and not insecure:
        print("sfdaemon: no TLS certificate: give --cert, --key and --ca (sfpy-ca makes them), "
              "or --insecure on a loopback address (127.0.0.0/8, ::1)", file=sys.stderr)
        return EXIT_FAILED
    if insecure and not remote.is_loopback(host):
        print(f"sfdaemon: {host} is not a loopback address: without TLS (--insecure) sfdaemon "
              "listens on loopback addresses only", file=sys.stderr)
        return EXIT_FAILED
    hosts = config.get("hosts") or {}
    if not isinstance(hosts, dict) or not all(
        isinstance(k, str) and isinstance(v, (str, int)) for k, v in hosts.items()
    ):
        raise ConfigError("hosts must map host names to address[:port]")
    name = str(config.get("name") or host)
    connector = remote.DaemonConnector(name, host, port, {k: str(v) for k, v in hosts.items()})
    root = RootProcess(
        state_dir, host=name, address=f"{host}:{port}",
        on_stop=on_stop, on_restart=on_restart, terminate_timeout=float(config.get("terminate_timeout") or 60.0),
        access=access,
        placement=connector,
    )
    log = logging.getLogger("sfpy.daemon")
    _crash_hook(log)
    _say_security(log, files, access, insecure)
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
        _warm_up(log)

    try:
        remote.serve(root, host, port, ready=ready, files=files, insecure=insecure)
    finally:
        root.close()
    # the stop thread has finished terminating; other threads are daemon threads
    log.info("stopped", extra={"app": "-"})
    return EXIT_OK


def _warm_up(log: logging.Logger) -> None:
    """Import the component modules (and what their commands use) in the background once
    the daemon is ready, so that the first deployment does not pay for them (0.15–0.3 s on a
    2-core machine, before its first command; about 2 MiB of memory). A module that fails
    to import is left for the deployment that needs it to report."""
    import importlib
    import threading

    def run() -> None:
        from sfpy.engine import registry

        for name in registry.known_names():
            try:
                registry.lookup(name)
            except Exception as error:  # noqa: BLE001 - the deployment will say what is wrong
                log.debug("warm-up: %s not loaded: %s", name, error, extra={"app": "-"})
        for module in ("psutil", "sqlite3"):
            try:
                importlib.import_module(module)
            except ImportError as error:
                log.debug("warm-up: %s not imported: %s", module, error, extra={"app": "-"})

    threading.Thread(target=run, name="sfpy-warm-up", daemon=True).start()


def _crash_hook(log: logging.Logger) -> None:
    """Test mode: SIGKILL this daemon right after its Nth journal write (CRASH_VARIABLE)."""
    text = os.environ.get(CRASH_VARIABLE, "").strip()
    if not text or os.environ.get("SFPY_TEST_MODE") != "1":
        return
    try:
        limit = int(text)
    except ValueError:
        raise ConfigError(f"{CRASH_VARIABLE} must be a number of journal writes") from None
    import threading

    from sfpy.host import journal

    count = 0
    guard = threading.Lock()

    def after_write(label: str) -> None:
        nonlocal count
        with guard:
            count += 1
            number = count
        log.info("test mode: journal write %d (%s)", number, label, extra={"app": "-"})
        if limit and number >= limit:
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    journal._after_write = after_write
    log.warning("test mode: killing myself after journal write %d", limit, extra={"app": "-"})


def _security(args: Any, config: dict[str, Any], insecure: bool) -> tuple[Any, Any]:
    """The TLS files (None with ``--insecure`` or when none is given) and the roles."""
    from sfpy.engine.access import Access
    from sfpy.engine.tls import TLSFiles

    paths: dict[str, str | None] = {}
    for key in ("cert", "key", "ca"):
        value = getattr(args, key) or config.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key} must be a file name")
        paths[key] = value
    roles = config.get("roles")
    if roles is not None and not isinstance(roles, dict):
        raise ConfigError("roles must map deploy, read and manage to lists of certificate "
                          "subjects")
    try:
        access = Access(roles)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if insecure:
        if any(paths.values()):
            raise ConfigError("--insecure and a TLS certificate: choose one")
        return None, access
    if not any(paths.values()):
        return None, access
    missing = [f"--{key}" for key, value in paths.items() if not value]
    if missing:
        raise ConfigError(f"TLS needs --cert, --key and --ca: {', '.join(missing)} missing")
    files = TLSFiles(ca=str(paths["ca"]), cert=paths["cert"], key=paths["key"])
    files.check()
    return files, access


def _say_security(log: logging.Logger, files: Any, access: Any, insecure: bool) -> None:
    if insecure:
        if access.configured:
            log.warning("--insecure: no certificates, so the roles are not applied: every "
                        "local caller may do everything", extra={"app": "-"})
        return
    from sfpy.engine.tls import read_pem_names

    me = read_pem_names(files.cert)
    log.info("TLS as %s (names %s), clients signed by %s", me.subject,
             ", ".join([*me.dns, *me.ips]) or "nothing", files.ca, extra={"app": "-"})
    if not access.configured:
        log.warning("no roles configured: every certificate the site CA signed may deploy, "
                    "terminate, manage and stop this daemon", extra={"app": "-"})


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
