"""The wire: the only module of sfpy that imports Pyro5.

A daemon serves its :class:`~sfpy.engine.rootprocess.RootProcess` as the Pyro5 object
``rootProcess`` (``PYRO:rootProcess@ADDRESS:3800``); a client calls it through
:func:`connect`. Everything that crosses is plain data (str, int, float, bool, None, list,
dict); docs/api.md is the contract, precise enough for a client written directly against
Pyro5.

Serializer: **json**, set once per process (:func:`configure`). The API is plain data by
design, and JSON is exactly plain data: nothing else (a tuple, a set, a class) can slip onto
the wire unnoticed, a client in another language can speak it, and it is faster than serpent
on nested data (12.6 ms against 166 ms for a 136 KiB tree, measured on this machine kind).
The daemon answers in the serializer a client speaks, so a raw Pyro5 client with Pyro5's
default (serpent) works too; the data is the same.

Errors: every remote method returns a dict; a refusal or failure is returned as
``{"error": {"code", "message", "path", "host"}}`` and raised on the client side as one type,
:class:`RemoteError` (never a Python exception object over the wire). ``code`` maps to a
command's exit code (:data:`~sfpy.engine.rootprocess.EXIT_CODES`: 1 refused or failed, 3 the
description, 4 unreachable or version, 5 timeout, 6 cleanup incomplete).

Where ``sfProcessHost`` plugs in (later): a daemon that places a subtree on another host is a
client of that host's ``rootProcess`` through :func:`connect`; the handle implementing the
engine's ``LifecycleChild`` contract lives next to this module and uses only :class:`Client`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import Pyro5.api
import Pyro5.errors

from sfpy.engine import rootprocess
from sfpy.engine.rootprocess import EXIT_CODES, DaemonError, RootProcess
from sfpy.errors import SfpyError

log = logging.getLogger("sfpy.daemon")

OBJECT_ID = "rootProcess"
DEFAULT_PORT = 3800
SERIALIZER = "json"
#: Connections a daemon serves at once (Pyro5's thread server: one thread per connection).
THREADPOOL_SIZE = 256

_configured = False
_configure_lock = threading.Lock()


class RemoteError(SfpyError):
    """A daemon refused or failed (``code`` from the daemon), or could not be reached or
    understood (``unreachable``, ``version``, ``timeout``). ``exit_code`` follows the code."""

    def __init__(
        self, code: str, message: str, path: str | None = None, host: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        self.host = host

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return EXIT_CODES.get(self.code, 1)

    @classmethod
    def from_data(cls, data: Any, host: str) -> RemoteError:
        if not isinstance(data, dict):
            return cls("internal", f"malformed error from {host}: {data!r}", host=host)
        return cls(
            str(data.get("code", "internal")),
            str(data.get("message", "")),
            data.get("path") if isinstance(data.get("path"), str) else None,
            data.get("host") if isinstance(data.get("host"), str) else host,
        )


def configure() -> None:
    """Pyro5's configuration, once per process (it is process-global and read lazily): no
    ``PYRO_*`` environment overrides, json, TCP_NODELAY, a pool sized for many clients."""
    global _configured
    with _configure_lock:
        if _configured:
            return
        Pyro5.config.reset(use_environment=False)
        Pyro5.config.SERIALIZER = SERIALIZER
        Pyro5.config.SOCK_NODELAY = True
        Pyro5.config.SOCK_REUSE = True
        Pyro5.config.SERVERTYPE = "thread"
        Pyro5.config.THREADPOOL_SIZE = THREADPOOL_SIZE
        Pyro5.config.THREADPOOL_SIZE_MIN = 4
        Pyro5.config.DETAILED_TRACEBACK = False
        _configured = True


# -- the daemon side ---------------------------------------------------------------------------
def _exposed(method: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A facade method: plain data in and out; every error becomes ``{"error": {...}}``."""

    def call(self: _Facade, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return method(self, *args, **kwargs)
        except DaemonError as error:
            return {"error": error.to_dict(self.root.host)}
        except TypeError as error:  # wrong arguments from a client
            return {"error": {"code": "bad-request", "message": str(error), "path": None,
                              "host": self.root.host}}
        except Exception as error:  # noqa: BLE001 - never a Python exception on the wire
            log.exception("%s failed", method.__name__, extra={"app": "-"})
            return {"error": {"code": "internal", "message": f"{type(error).__name__}: {error}",
                              "path": None, "host": self.root.host}}

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return Pyro5.api.expose(call)


class _Facade:
    """What ``rootProcess`` exposes: the API of docs/api.md, nothing else."""

    def __init__(self, root: RootProcess) -> None:
        self.root = root

    @_exposed
    def hello(self, api_version: Any) -> dict[str, Any]:
        return self.root.hello(api_version)

    @_exposed
    def deploy(self, name: Any, description_json: Any, request_id: Any = None) -> dict[str, Any]:
        return self.root.deploy(name, description_json, request_id)

    @_exposed
    def operation(self, op_id: Any, since: Any = 0, wait: Any = 0.0) -> dict[str, Any]:
        return self.root.operation(op_id, since, wait)

    @_exposed
    def terminate(
        self, name: Any, abnormal: Any = False, detach: Any = False, reason: Any = None,
        request_id: Any = None,
    ) -> dict[str, Any]:
        return self.root.terminate(name, abnormal, detach, reason, request_id)

    @_exposed
    def list(self) -> dict[str, Any]:
        return self.root.list()

    @_exposed
    def tree(self, name: Any) -> dict[str, Any]:
        return self.root.tree(name)

    @_exposed
    def ping(self, name: Any = None) -> dict[str, Any]:
        return self.root.ping(name)

    @_exposed
    def diagnostics(self) -> dict[str, Any]:
        return self.root.diagnostics()

    @_exposed
    def stop(self) -> dict[str, Any]:
        return self.root.stop()

    # -- management (sfmanage, sflogs, sfdiagnostics NAME / --leftovers / --clean) ----------
    @_exposed
    def logs(self, name: Any, component: Any = None, since: Any = None, lines: Any = 50,
             wait: Any = 0.0) -> dict[str, Any]:
        return self.root.logs(name, component, since, lines, wait)

    @_exposed
    def set_attribute(self, path: Any, attribute: Any, value: Any) -> dict[str, Any]:
        return self.root.set_attribute(path, attribute, value)

    @_exposed
    def remove_attribute(self, path: Any, attribute: Any) -> dict[str, Any]:
        return self.root.remove_attribute(path, attribute)

    @_exposed
    def detach(self, path: Any) -> dict[str, Any]:
        return self.root.detach(path)

    @_exposed
    def application_diagnostics(self, name: Any) -> dict[str, Any]:
        return self.root.application_diagnostics(name)

    @_exposed
    def leftovers(self) -> dict[str, Any]:
        return self.root.leftovers()

    @_exposed
    def clean(self, name: Any) -> dict[str, Any]:
        return self.root.clean(name)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def serve(
    root_process: RootProcess, host: str, port: int = DEFAULT_PORT,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``root_process`` as ``rootProcess`` on ``host:port`` until it has stopped
    (:meth:`RootProcess.stop`, or :meth:`RootProcess.close` from a signal handler).
    ``ready(uri)`` is called once the socket listens."""
    configure()
    try:
        daemon = Pyro5.api.Daemon(host=host, port=port)
    except OSError as error:
        raise DaemonError("refused", f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    with daemon:
        uri = daemon.register(_Facade(root_process), OBJECT_ID)
        root_process.on_stopped(daemon.shutdown)
        if ready is not None:
            ready(str(uri))
        if root_process.stopped.is_set():
            return
        daemon.requestLoop(lambda: not root_process.stopped.is_set())


# -- the client side ---------------------------------------------------------------------------
def parse_host(text: str) -> tuple[str, int]:
    """``name``, ``name:port``, ``1.2.3.4``, ``1.2.3.4:port``, ``[::1]:port`` or ``::1``;
    no port means 3800."""
    text = text.strip()
    if not text:
        raise RemoteError("bad-request", "an empty host")
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        address, _, port_text = text.partition(":")
    else:
        address, port_text = text, ""
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise RemoteError("bad-request", f"{text}: the port must be a number 1-65535")
        port = int(port_text)
    return address, port


class Client:
    """A connection to one daemon's ``rootProcess``. Its methods mirror the API and return
    the result dict, or raise :class:`RemoteError`. One thread at a time (Pyro5 proxies
    belong to one thread): make one per thread. ``calls`` counts remote calls."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.calls = 0
        self.server: dict[str, Any] = {}
        self._proxy = Pyro5.api.Proxy(f"PYRO:{OBJECT_ID}@{self.where}")
        self._proxy._pyroTimeout = timeout
        self._proxy._pyroSerializer = SERIALIZER

    def call(self, method: str, *args: Any, retry: bool = True) -> dict[str, Any]:
        """Call ``method``; a connection that dropped is opened again and the call repeated
        (every method is safe to repeat: deploy and terminate by their request id)."""
        attempts = 3 if retry else 1
        for attempt in range(attempts):
            self.calls += 1
            try:
                result = getattr(self._proxy, method)(*args)
                break
            except Pyro5.errors.TimeoutError:
                raise RemoteError(
                    "timeout", f"sfdaemon at {self.where} did not answer within {self.timeout:g} s",
                    host=self.where,
                ) from None
            except Pyro5.errors.ConnectionClosedError as error:
                if attempt + 1 >= attempts:
                    raise RemoteError("unreachable", f"connection to {self.where} lost: {error}",
                                      host=self.where) from None
                with contextlib.suppress(Pyro5.errors.CommunicationError, OSError):
                    self._proxy._pyroRelease()
                time.sleep(0.1 * (attempt + 1))
            except Pyro5.errors.CommunicationError as error:
                raise RemoteError("unreachable", _unreachable(self.where, error),
                                  host=self.where) from None
            except Pyro5.errors.PyroError as error:
                raise RemoteError("internal", f"{self.where}: {error}", host=self.where) from None
        if not isinstance(result, dict):
            raise RemoteError("internal", f"{self.where} answered {method} with {result!r}",
                              host=self.where)
        if "error" in result:
            raise RemoteError.from_data(result["error"], self.where)
        return result

    # -- the API ------------------------------------------------------------------------------
    def hello(self, api_version: int | None = None) -> dict[str, Any]:
        version = rootprocess.API_VERSION if api_version is None else api_version
        self.server = self.call("hello", version)
        return self.server

    def deploy(self, name: str, description_json: str, request_id: str | None = None) -> dict[str, Any]:
        return self.call("deploy", name, description_json, request_id)

    def operation(self, op_id: str, since: int = 0, wait: float = 0.0) -> dict[str, Any]:
        return self.call("operation", op_id, since, wait)

    def terminate(
        self, name: str, abnormal: bool = False, detach: bool = False, reason: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        return self.call("terminate", name, abnormal, detach, reason, request_id)

    def list(self) -> dict[str, Any]:
        return self.call("list")

    def tree(self, name: str) -> dict[str, Any]:
        return self.call("tree", name)

    def ping(self, name: str | None = None) -> dict[str, Any]:
        return self.call("ping", name)

    def diagnostics(self) -> dict[str, Any]:
        return self.call("diagnostics")

    def stop(self) -> dict[str, Any]:
        return self.call("stop")

    def logs(self, name: str, component: str | None = None, since: int | None = None,
             lines: int = 50, wait: float = 0.0) -> dict[str, Any]:
        return self.call("logs", name, component, since, lines, wait)

    def set_attribute(self, path: str, attribute: str, value: Any) -> dict[str, Any]:
        return self.call("set_attribute", path, attribute, value)

    def remove_attribute(self, path: str, attribute: str) -> dict[str, Any]:
        return self.call("remove_attribute", path, attribute)

    def detach(self, path: str) -> dict[str, Any]:
        return self.call("detach", path)

    def application_diagnostics(self, name: str) -> dict[str, Any]:
        return self.call("application_diagnostics", name)

    def leftovers(self) -> dict[str, Any]:
        return self.call("leftovers")

    def clean(self, name: str) -> dict[str, Any]:
        return self.call("clean", name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._proxy._pyroRelease()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unreachable(where: str, error: BaseException) -> str:
    text = str(error)
    if "refused" in text.lower():
        text = "connection refused"
    return f"no sfpy daemon reachable at {where}: {text}"


def connect(host: str, port: int = DEFAULT_PORT, timeout: float = 10.0, *,
            api_version: int | None = None) -> Client:
    """A :class:`Client` of the daemon at ``host:port`` whose API version has been checked
    (``hello``): :class:`RemoteError` ``unreachable`` or ``version`` (exit 4) otherwise."""
    configure()
    client = Client(host, port, timeout)
    try:
        client.hello(api_version)
    except BaseException:
        client.close()
        raise
    return client


__all__ = [
    "DEFAULT_PORT",
    "OBJECT_ID",
    "Client",
    "RemoteError",
    "configure",
    "connect",
    "is_loopback",
    "parse_host",
    "serve",
]
