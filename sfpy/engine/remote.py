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

TLS (:mod:`sfpy.engine.tls` builds the contexts): every connection is TLS with a certificate
on both sides, checked against the site CA, unless the process is configured ``insecure``
(plain TCP, loopback addresses only, refused anywhere else). Pyro5's SSL settings are
process-global, so :func:`configure` sets them once: a daemon with its own certificate (which
is also its client certificate towards peer daemons), a command with the user's. Roles
(:mod:`sfpy.engine.access`): every exposed method passes through
:meth:`RootProcess.authorize` with the caller's certificate subject first.


Placement (``sfProcessHost``): :class:`DaemonConnector` implements the engine's
:class:`~sfpy.engine.placement.Connector` over :class:`Client`: it says which host names this
daemon (its name, its address, with or without the port), finds the others (the
configuration's host-name map, then DNS), and makes the calls the engine's handles and the
parts' parent watchers need, one Pyro5 proxy per thread and daemon, counting them by method.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import Pyro5.api
import Pyro5.errors
import Pyro5.socketutil

from sfpy.engine import rootprocess, tls
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
#: The process's one security setting: None (not chosen yet), INSECURE, or its TLS files.
INSECURE = "insecure"
_security: tls.TLSFiles | str | None = None
_contexts: dict[str, ssl.SSLContext] = {}


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


def configure(files: tls.TLSFiles | None = None, *, insecure: bool = False) -> None:
    """Pyro5's configuration, once per process (it is process-global and read lazily): no
    ``PYRO_*`` environment overrides, json, TCP_NODELAY (without it a TLS round trip waits
    for delayed ACKs), a pool sized for many clients.

    ``files`` (TLS) or ``insecure`` (plain TCP, loopback only) chooses the process's security,
    once: choosing another later is refused. With neither, only the rest is configured."""
    global _configured, _security
    with _configure_lock:
        if not _configured:
            Pyro5.config.reset(use_environment=False)
            Pyro5.config.SERIALIZER = SERIALIZER
            Pyro5.config.SOCK_NODELAY = True
            Pyro5.config.SOCK_REUSE = True
            Pyro5.config.SERVERTYPE = "thread"
            Pyro5.config.THREADPOOL_SIZE = THREADPOOL_SIZE
            Pyro5.config.THREADPOOL_SIZE_MIN = 4
            Pyro5.config.DETAILED_TRACEBACK = False
            _configured = True
        if files is None and not insecure:
            return
        wanted: tls.TLSFiles | str = files if files is not None else INSECURE
        if _security is None:
            if isinstance(wanted, tls.TLSFiles):
                _use_tls(wanted)
            _security = wanted
        elif _security != wanted:
            raise RemoteError("refused", f"this process already uses {_describe(_security)}; "
                              "Pyro5's TLS settings are process-global: cannot switch to "
                              f"{_describe(wanted)}")


def _use_tls(files: tls.TLSFiles) -> None:
    """Build this process's contexts and make Pyro5 use them: Pyro5 asks
    ``socketutil.get_ssl_context`` for a context whenever it listens or connects; it gets
    ours (a server context whose handshake runs in the connection's worker thread, and a
    client context that trusts the site CA only)."""
    _contexts["client"] = tls.client_context(files)
    if files.cert is not None:
        _contexts["server"] = tls.server_context(files)
    Pyro5.config.SSL = True
    Pyro5.config.SSL_REQUIRECLIENTCERT = True
    Pyro5.config.SSL_SERVERCERT = files.cert or ""
    Pyro5.config.SSL_SERVERKEY = files.key or ""
    Pyro5.config.SSL_CLIENTCERT = files.cert or ""
    Pyro5.config.SSL_CLIENTKEY = files.key or ""
    Pyro5.config.SSL_CACERTS = files.ca
    Pyro5.socketutil.get_ssl_context = _pyro_ssl_context  # type: ignore[assignment]


def _pyro_ssl_context(servercert: str = "", **_: Any) -> ssl.SSLContext:
    context = _contexts.get("server" if servercert else "client")
    if context is None:
        raise Pyro5.errors.CommunicationError("TLS: no certificate to serve with")
    return context


def _describe(security: tls.TLSFiles | str | None) -> str:
    if security is None:
        return "no security setting"
    if security == INSECURE:
        return "plain TCP (--insecure)"
    assert isinstance(security, tls.TLSFiles)
    return f"TLS with certificate {security.cert or '(none)'} and CA {security.ca}"


def security() -> tls.TLSFiles | str | None:
    """The process's security setting: its :class:`~sfpy.engine.tls.TLSFiles`,
    :data:`INSECURE`, or None before :func:`configure` chose one."""
    return _security


def _peer() -> tls.Identity | None:
    """The certificate identity of the client of the current remote call (None: plain TCP)."""
    client = Pyro5.api.current_context.client
    sock = getattr(client, "sock", None)
    if not isinstance(sock, ssl.SSLSocket):
        return None
    return tls.identity(sock.getpeercert())


class _Daemon(Pyro5.api.Daemon):
    """Pyro5's daemon, doing each connection's TLS handshake in that connection's worker
    thread, bounded in time, and logging a refused one in one line."""

    def _handshake(self, conn: Any, denied_reason: Any = None) -> bool:
        sock = getattr(conn, "sock", None)
        if isinstance(sock, ssl.SSLSocket) and denied_reason is None:
            try:
                where = "{}:{}".format(*sock.getpeername()[:2])
            except OSError:
                where = "?"
            previous = sock.gettimeout()
            try:
                sock.settimeout(tls.HANDSHAKE_TIMEOUT)
                sock.do_handshake()
                sock.settimeout(previous)
            except (ssl.SSLError, OSError) as error:
                reason = getattr(error, "verify_message", None) or getattr(error, "reason", None) \
                    or str(error) or type(error).__name__
                log.warning("refused a connection from %s: TLS handshake failed: %s", where,
                            str(reason).lower().replace("_", " "), extra={"app": "-"})
                return False
        return bool(super()._handshake(conn, denied_reason))


# -- the daemon side ---------------------------------------------------------------------------
def _exposed(method: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A facade method: plain data in and out; every error becomes ``{"error": {...}}``."""

    def call(self: _Facade, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            self.root.authorize(method.__name__, _peer())
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
    def subtree_deploy(
        self, name: Any, path: Any, description_json: Any, parent: Any, request_id: Any = None
    ) -> dict[str, Any]:
        return self.root.subtree_deploy(name, path, description_json, parent, request_id)

    @_exposed
    def subtree_start(self, name: Any, path: Any, request_id: Any = None) -> dict[str, Any]:
        return self.root.subtree_start(name, path, request_id)

    @_exposed
    def subtree_terminate(
        self, name: Any, path: Any, record: Any = None, request_id: Any = None
    ) -> dict[str, Any]:
        return self.root.subtree_terminate(name, path, record, request_id)

    @_exposed
    def subtree_ping(self, name: Any, path: Any) -> dict[str, Any]:
        return self.root.subtree_ping(name, path)

    @_exposed
    def subtree_resolve(self, name: Any, path: Any, reference: Any) -> dict[str, Any]:
        return self.root.subtree_resolve(name, path, reference)

    @_exposed
    def tree(self, name: Any) -> dict[str, Any]:
        return self.root.tree(name)

    @_exposed
    def ping(self, name: Any = None) -> dict[str, Any]:
        return self.root.ping(name)

    @_exposed
    def diagnostics(self) -> dict[str, Any]:
        result = self.root.diagnostics()
        peer = _peer()
        files = _security if isinstance(_security, tls.TLSFiles) else None
        result["tls"] = None if files is None else {
            "certificate": files.cert, "ca": files.ca, "roles": self.root.access.describe()}
        result["caller"] = {
            "subject": None if peer is None else peer.subject,
            "roles": sorted(self.root.access.roles_of(peer)),
        }
        return result

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
    ready: Callable[[str], None] | None = None, *, files: tls.TLSFiles | None = None,
    insecure: bool = False,
) -> None:
    """Serve ``root_process`` as ``rootProcess`` on ``host:port`` until it has stopped
    (:meth:`RootProcess.stop`, or :meth:`RootProcess.close` from a signal handler).
    ``ready(uri)`` is called once the socket listens. TLS with ``files`` (the daemon's
    certificate, key and the site CA); ``insecure``: plain TCP, on a loopback address only."""
    configure(files, insecure=insecure)
    if _security is None:
        raise DaemonError("refused", "a daemon needs its TLS certificate, key and the site CA "
                          "(or insecure, on a loopback address)")
    if _security == INSECURE and not is_loopback(host):
        raise DaemonError("refused", f"{host} is not a loopback address: without TLS sfdaemon "
                          "listens on loopback addresses only")
    if _security != INSECURE and "server" not in _contexts:
        raise DaemonError("refused", "a daemon needs its own certificate and key")
    try:
        daemon = _Daemon(host=host, port=port)
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

    def __init__(self, host: str, port: int, timeout: float,
                 expected_host: str | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.expected_host = expected_host
        self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.calls = 0
        self.server: dict[str, Any] = {}
        self.peer: tls.Identity | None = None
        self._proxy = _Proxy(f"PYRO:{OBJECT_ID}@{self.where}")
        object.__setattr__(self._proxy, "_sfpy_client", self)
        self._proxy._pyroTimeout = timeout
        self._proxy._pyroSerializer = SERIALIZER

    def set_timeout(self, seconds: float) -> None:
        """Seconds each later call may take (a long-poll needs more than its wait)."""
        self.timeout = seconds
        self._proxy._pyroTimeout = seconds

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
                if not self.server and self._proxy._pyroConnection is None:
                    # dropped while connecting: a refusal, not a hiccup
                    raise RemoteError("unreachable", _closed_at_once(self.where, error),
                                      host=self.where) from None
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


class _Proxy(Pyro5.api.Proxy):
    """A proxy that checks, on every (re)connection, that the daemon's certificate names the
    host its client was asked to reach (``expected_host``), besides the address (which the
    TLS handshake checks)."""

    def _pyroValidateHandshake(self, response: Any) -> None:
        client: Client | None = self.__dict__.get("_sfpy_client")
        connection: Any = self.__dict__.get("_pyroConnection")
        sock = getattr(connection, "sock", None)
        if client is None or not isinstance(sock, ssl.SSLSocket):
            return
        peer = tls.identity(sock.getpeercert())
        client.peer = peer
        wanted = client.expected_host
        if wanted and (peer is None or not tls.names_host(peer, wanted)):
            names = ", ".join([*(peer.dns if peer else ()), *(peer.ips if peer else ())]) or "none"
            with contextlib.suppress(Exception):
                connection.close()
            self._pyroConnection = None
            raise Pyro5.errors.CommunicationError(
                f"the daemon at {client.where} is not {wanted}: its certificate "
                f"({peer.subject if peer else 'none'}) names {names}")


def _closed_at_once(where: str, error: BaseException) -> str:
    """A daemon that closes a new connection at once has refused it: with TLS, this client's
    certificate (TLS 1.3 says why only in the daemon's log); without, the lack of TLS."""
    if isinstance(_security, tls.TLSFiles):
        if _security.cert is None:
            return (f"sfdaemon at {where} refused the connection: it requires a client "
                    "certificate and none was given (--cert and --key, SFPY_CERT and SFPY_KEY, "
                    "or client.yaml)")
        return (f"sfdaemon at {where} refused the connection during TLS set-up: it does not "
                f"accept the certificate {_security.cert} (expired, not yet valid, or not signed "
                "by its site CA; its log says which)")
    if _security == INSECURE:
        return (f"sfdaemon at {where} closed the connection: it requires TLS (drop --insecure "
                "and give a certificate)")
    return f"connection to {where} lost: {error}"


class DaemonConnector:
    """The engine's placement connector over Pyro5 (:class:`sfpy.engine.placement.Connector`).

    ``name`` and ``host:port`` are this daemon's; ``hosts`` the configuration's host-name
    map (``{name: "address[:port]"}``). Thread-safe: each thread gets its own proxies (a
    Pyro5 proxy belongs to one thread). ``calls_by_method`` counts every remote call made.
    """

    def __init__(self, name: str, host: str, port: int = DEFAULT_PORT,
                 hosts: dict[str, str] | None = None, timeout: float = 10.0) -> None:
        configure()
        self.name = name
        self.host = host
        self.port = port
        self.hosts = {str(k): str(v) for k, v in (hosts or {}).items()}
        self.timeout = timeout
        self.calls_by_method: dict[str, int] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._greeted: set[str] = set()
        self._own = self._addresses(host)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(self.calls_by_method.values())

    @staticmethod
    def _addresses(host: str) -> set[str]:
        try:
            return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        except OSError:
            return set()

    def _split(self, text: str) -> tuple[str, int | None]:
        """``host`` or ``host:port`` (through the host-name map); port None when not given."""
        text = text.strip()
        mapped = self.hosts.get(text)
        if mapped is not None:
            text = mapped.strip()
        address, port = parse_host(text)
        explicit = text.endswith("]:" + str(port)) or (text.count(":") == 1)
        return address, port if explicit else None

    def is_here(self, host: str) -> bool:
        try:
            address, port = self._split(host)
        except RemoteError:
            return False
        if port is not None and port != self.port:
            return False
        if address == self.name or address == self.host:
            return True
        return bool(self._own) and self._addresses(address) == self._own

    def locate(self, host: str) -> str:
        from sfpy.engine.placement import ConnectorError

        try:
            address, port = self._split(host)
        except RemoteError as error:
            raise ConnectorError("bad-request", f"sfProcessHost {host!r}: {error.message}") from None
        if not self._addresses(address):
            raise ConnectorError(
                "unreachable", f"sfProcessHost {host!r}: no such host (not in the daemon's "
                "host-name map, and DNS does not know it)",
            )
        port = DEFAULT_PORT if port is None else port
        return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

    def _client(self, where: str, timeout: float) -> Client:
        clients: dict[str, Client] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        client = clients.get(where)
        if client is None:
            address, port = parse_host(where)
            # With TLS the peer daemon's certificate must name the host it was asked to reach.
            client = clients[where] = Client(address, port, timeout, expected_host=address)
        client.set_timeout(timeout)
        return client

    def call(self, where: str, method: str, *args: Any, timeout: float | None = None) -> dict[str, Any]:
        from sfpy.engine.placement import ConnectorError

        client = self._client(where, self.timeout if timeout is None else timeout)
        try:
            if where not in self._greeted:
                self._count("hello")
                client.hello()
                with self._lock:
                    self._greeted.add(where)
            self._count(method)
            return client.call(method, *args)
        except RemoteError as error:
            if error.code in ("unreachable", "timeout"):
                client.close()
                self._local.clients.pop(where, None)
            raise ConnectorError(error.code, error.message, error.path) from None

    def _count(self, method: str) -> None:
        with self._lock:
            self.calls_by_method[method] = self.calls_by_method.get(method, 0) + 1


def _unreachable(where: str, error: BaseException) -> str:
    text = str(error)
    if isinstance(_security, tls.TLSFiles):
        described = tls.describe_failure(text)
        if described != text:
            return f"sfdaemon at {where}: {described}"
    elif _security == INSECURE and ("connection closed" in text.lower() or "reset" in text.lower()):
        return (f"sfdaemon at {where} closed the connection: it probably requires TLS "
                "(drop --insecure and give a certificate)")
    if "refused" in text.lower() and "connection" in text.lower():
        text = "connection refused"
    text = text.removeprefix(f"cannot connect to ('{where.rsplit(':', 1)[0]}', "
                             f"{where.rsplit(':', 1)[-1]}): ")
    return f"no sfpy daemon reachable at {where}: {text}"


def connect(host: str, port: int = DEFAULT_PORT, timeout: float = 10.0, *,
            api_version: int | None = None, expected_host: str | None = None) -> Client:
    """A :class:`Client` of the daemon at ``host:port`` whose API version has been checked
    (``hello``): :class:`RemoteError` ``unreachable`` or ``version`` (exit 4) otherwise.

    With TLS the daemon's certificate must be signed by the site CA and name ``host`` (the
    address or name connected to); ``expected_host`` (the host name a description or the
    host map gave, when ``host`` is its address) must be named by it as well: a daemon that
    places a subtree on ``xen02`` passes ``expected_host="xen02"``. Without TLS (the process
    is :data:`INSECURE`) only loopback addresses are reached."""
    configure()
    if _security is None:
        raise RemoteError("unreachable", f"cannot connect to {host}: no TLS certificate, key "
                          "and CA configured (nor --insecure)", host=host)
    if _security == INSECURE and not is_loopback(host):
        raise RemoteError("unreachable", f"will not talk plain TCP to {host}: it is not a "
                          "loopback address (--insecure is for loopback daemons only; give a "
                          "certificate to use TLS)", host=host)
    client = Client(host, port, timeout, expected_host)
    try:
        client.hello(api_version)
    except BaseException:
        client.close()
        raise
    return client


__all__ = [
    "DEFAULT_PORT",
    "INSECURE",
    "OBJECT_ID",
    "Client",
    "DaemonConnector",
    "RemoteError",
    "configure",
    "connect",
    "is_loopback",
    "parse_host",
    "security",
    "serve",
]
