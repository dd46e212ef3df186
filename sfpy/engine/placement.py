"""Cross-host placement: SmartFrog's ``sfProcessHost``.

A subtree whose ``sfProcessHost`` names another host is deployed by that host's daemon *as
part of the same application*. The deploying daemon builds a :class:`RemoteSubtree` in its
place, a handle that implements the engine's :class:`~sfpy.engine.contracts.LifecycleChild`
contract (it is a :class:`~sfpy.engine.prim.Prim` whose hooks forward):

deploy pass
    one remote operation asks the other daemon to build *and deploy* the whole subtree
    (``subtree_deploy``: one call for the subtree, however many components it has), then the
    handle follows that operation as ``sfstart`` follows one, inside
    ``current_step().blocking(...)``: the application's lifecycle lock is released while it
    waits, and a termination that cancels the step asks the other daemon to terminate the
    subtree at once.
start pass
    ``subtree_start``, followed the same way. The other daemon deploys only in the first
    call, so SmartFrog's three passes hold over the whole application: nothing starts
    anywhere before everything is deployed everywhere.
terminate
    ``subtree_terminate`` with the record as data, followed until the subtree's cleanup has
    run on its own host (bounded by the terminate step's cleanup bound). A Compound
    terminating first *starts* the termination of all its placed children
    (:meth:`RemoteSubtree.sf_begin_terminate`, unless ``sfSyncTerminate true``), so their
    cleanups on their hosts overlap; each handle's terminate hook then only follows the
    operation already started.
ping
    never blocks the scheduler: each round starts a remote ``subtree_ping`` in a small pool
    and judges the answer of the previous round. No answer (yet), or an unreachable host,
    is :class:`~sfpy.engine.errors.PingMissed` (``sfLivenessFactor`` misses fail the handle,
    and its Compound reacts as for any child). A subtree that has ended on its host (a
    ``BashProcess`` that exited with ``terminate true``, say) is learnt here: the handle
    terminates with the subtree's own record, so the parent's ``child_terminated`` sees what
    it would have seen for a local child, at most one liveness delay late.
re-adoption
    after this daemon was killed and started again, the handle is rebuilt and its
    ``adopt`` hook asks the other daemon whether it still runs the subtree
    (``subtree_ping``); only then is the application taken back (docs/engine.md).
resolution
    ``sf_lookup`` on the handle (and so LAZY references and ``sf_resolve`` through it) asks
    the other daemon (``subtree_resolve``); a component found there comes back as a
    :class:`RemoteComponent`, which resolves further the same way. The attributes the engine
    itself reads (liveness settings, ``terminateTimeout``…) are answered from the handle's
    copy of the description, without a remote call.

The other direction: the subtree's daemon pings the parent daemon every liveness delay and
terminates the subtree (its cleanup running on its own host) when the parent's application
is gone or its daemon misses ``sfLivenessFactor`` pings. The parent gives the subtree the
liveness settings the handle sees (``sfLivenessDelay``/``sfLivenessFactor``, unless the
subtree's root sets its own), so ``ATTRIB`` finds the same values on both sides.

No transport here: the handle talks through a :class:`Connector` (``Process.placement``),
which :mod:`sfpy.engine.remote` implements over Pyro5 and the daemon hands to the
Processes of its applications.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

from sfpy.engine.errors import EngineError, LifecycleError, PingMissed, ResolutionError
from sfpy.engine.prim import _ENDING, _MISSING, Prim
from sfpy.engine.termination import TerminationRecord
from sfpy.host.work import check, current_step
from sfpy.language.errors import DescriptionError
from sfpy.language.model import ComponentDescription

log = logging.getLogger("sfpy.engine")

#: Seconds one ``operation`` long-poll of a handle waits on the other daemon.
FOLLOW_WAIT = 10.0
#: Seconds a remote call may take beyond the wait it asks for.
CALL_MARGIN = 10.0
#: Seconds a restarted daemon waits for the other daemon's answer when re-adopting.
ADOPT_TIMEOUT = 5.0
#: ``since`` for an operation view that waits for the outcome only (no state lines).
OUTCOME_ONLY = 1 << 30
#: Attributes the engine reads on every component: answered from the handle's description.
LOCAL_NAMES = frozenset(
    {
        "sfClass",
        "sfProcessHost",
        "sfLivenessDelay",
        "sfLivenessFactor",
        "terminateTimeout",
        "sfProcessComponentName",
        "sfShouldDetach",
        "sfShouldTerminate",
        "sfShouldTerminateQuietly",
        "sfSyncTerminate",
    }
)
#: Names ``sfrun`` (no daemon) accepts in ``sfProcessHost``: this host.
_THIS_HOST_NAMES = ("localhost", "127.0.0.1", "::1")


class ConnectorError(EngineError):
    """A remote call failed: ``code`` as the remote API's (``unknown``, ``unreachable``,
    ``timeout``, ``failed``…), ``message`` for people."""

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


@runtime_checkable
class Connector(Protocol):
    """How the engine reaches other hosts' daemons (``Process.placement``)."""

    @property
    def address(self) -> str:
        """This daemon's ``ADDRESS:PORT``, given to the subtrees it places (they watch it)."""
        ...

    def is_here(self, host: str) -> bool:
        """Does ``host`` (as written in ``sfProcessHost``) name this daemon? Never raises."""
        ...

    def locate(self, host: str) -> str:
        """``ADDRESS:PORT`` of the daemon ``host`` names (the configuration's host-name map,
        then DNS); :class:`ConnectorError` when it cannot be found."""
        ...

    def call(
        self, where: str, method: str, *args: Any, timeout: float | None = None
    ) -> dict[str, Any]:
        """Call ``method`` of the daemon at ``where``; its result, or :class:`ConnectorError`."""
        ...


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _pings() -> ThreadPoolExecutor:
    """The threads remote pings run in (shared; the scheduler thread never waits for one)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sfpy-remote-ping")
        return _pool


def record_from_data(data: Any, default_id: str | None = None) -> TerminationRecord:
    """A termination record from its plain-data form (``TerminationRecord.to_dict``)."""
    if not isinstance(data, dict):
        return TerminationRecord.abnormal("ended (no record)", id=default_id)
    kind = data.get("type")
    description = data.get("description")
    ident = data.get("id")
    return TerminationRecord(
        kind if isinstance(kind, str) and kind else TerminationRecord.ABNORMAL,
        description if isinstance(description, str) else None,
        ident if isinstance(ident, str) else default_id,
    )


class RemoteSubtree(Prim):
    """The handle in place of a subtree another host's daemon runs (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        #: ``sfProcessHost`` as written; the daemon's ``ADDRESS:PORT`` once located.
        self.sf_remote_host = ""
        self.sf_remote_address = ""
        self._sf_made = False  # the other daemon was asked to build the subtree
        self._sf_gone = False  # the subtree ended there by itself (learnt by a ping)
        self._sf_ping: Future[tuple[str, Any]] | None = None
        #: The termination started early (sf_begin_terminate): its operation id, or why
        #: the other daemon could not be asked.
        self._sf_ending: str | ConnectorError | None = None

    # -- building ---------------------------------------------------------------------------
    def sf_build(self, name: str, parent: Any, description: ComponentDescription,
                 process: Any, lifecycle: Any) -> None:
        super().sf_build(name, parent, description, process, lifecycle)
        self.sf_remote_host = str(description.attributes.get("sfProcessHost", ""))
        self._sf_context["sfHost"] = self.sf_remote_host

    # -- hooks ------------------------------------------------------------------------------
    def deploy(self) -> None:
        connector = self._sf_connector()
        self.sf_remote_address = connector.locate(self.sf_remote_host)
        from sfpy.language.unparse import to_json

        step = current_step()
        check(step)
        answer = connector.call(
            self.sf_remote_address, "subtree_deploy", self._sf_application(),
            self.sf_complete_name(), to_json(self._sf_sent_description()), connector.address,
            uuid.uuid4().hex,
        )
        self._sf_made = True
        outcome = self._sf_follow(answer["operation"], "deploying", cancellable=True)
        check(step)
        self._sf_check(outcome, "deploy")

    def start(self) -> None:
        connector = self._sf_connector()
        step = current_step()
        check(step)
        answer = connector.call(
            self.sf_remote_address, "subtree_start", self._sf_application(),
            self.sf_complete_name(), uuid.uuid4().hex,
        )
        outcome = self._sf_follow(answer["operation"], "starting", cancellable=True)
        check(step)
        self._sf_check(outcome, "start")

    def adopt(self, entries: list[Any]) -> bool:
        """After this daemon restarted: the subtree is taken back when the other daemon
        still runs it (``subtree_ping`` says ``running``); that daemon's part keeps
        watching this one, so it is still there only if this daemon came back within its
        liveness window. Nothing is journaled here for a placed subtree."""
        if entries:
            return False
        connector = self._sf_connector()
        self.sf_remote_address = connector.locate(self.sf_remote_host)
        try:
            answer = connector.call(
                self.sf_remote_address, "subtree_ping", self._sf_application(),
                self.sf_complete_name(), timeout=ADOPT_TIMEOUT,
            )
        except ConnectorError as error:
            self.log.warning("not re-adopted: %s", error.message)
            return False
        if answer.get("state") != "running":
            self.log.warning("not re-adopted: it is %s on %s", answer.get("state"),
                             self.sf_remote_host)
            return False
        self._sf_made = True
        return True

    def sf_begin_terminate(self, record: TerminationRecord) -> None:
        """Ask the other daemon to terminate the subtree now, without waiting for its
        cleanup: ``subtree_terminate`` answers at once with an operation, which the terminate
        hook follows later instead of starting another. A Compound calls this for all its
        placed children before terminating them one by one, so the cleanups on their hosts
        run side by side. Caller holds the lifecycle lock; never raises (a failure is
        reported by the terminate hook)."""
        if not self._sf_live() or self._sf_ending is not None or self.state in _ENDING:
            return
        self._sf_ending = self._sf_send_terminate(record.with_id(self.sf_complete_name()))

    def terminate(self, record: TerminationRecord) -> None:
        if not self._sf_made or self._sf_gone:
            return
        started = self._sf_ending
        if started is None:
            started = self._sf_send_terminate(record)
        try:
            if isinstance(started, ConnectorError):
                raise started
            outcome = self._sf_follow(started, "terminating", cancellable=False)
        except ConnectorError as error:
            if error.code == "unknown":
                return  # it has ended there already
            raise EngineError(
                f"cleanup on {self.sf_remote_host} not confirmed: {error.message} (that "
                "daemon terminates the subtree itself once it misses this one's pings)"
            ) from None
        if int(outcome.get("exit", 1)) == 6:
            failures = list(outcome.get("cleanup_failures") or []) + list(outcome.get("left") or [])
            raise EngineError(
                f"cleanup incomplete on {self.sf_remote_host}: " + "; ".join(failures)
            )

    def ping(self) -> None:
        previous = self._sf_ping
        if previous is not None and not previous.done():
            raise PingMissed(f"{self.sf_remote_host} has not answered the last ping yet")
        self._sf_ping = _pings().submit(self._sf_remote_ping)
        if previous is None:
            return
        kind, info = previous.result()
        if kind == "missed":
            raise PingMissed(info)
        if kind == "ended":
            # The subtree ended there by itself: end here with its own record, so the
            # parent reacts as it would to a local child's end.
            self._sf_gone = True
            self.sf_terminate(record_from_data(info, self.sf_complete_name()))

    # -- resolution -------------------------------------------------------------------------
    def sf_lookup(self, name: Any, first: bool) -> Any:
        if name in LOCAL_NAMES or not self._sf_live():
            return super().sf_lookup(name, first)
        return self.sf_remote_lookup(self.sf_complete_name(), name)

    def sf_remote_lookup(self, path: str, reference: Any) -> Any:
        """Resolve ``reference`` (an attribute name, or reference text) from the component
        ``path`` of the subtree, on its host. KeyError when it is not there."""
        connector = self._sf_connector()
        try:
            answer = connector.call(
                self.sf_remote_address, "subtree_resolve", self._sf_application(), path,
                str(reference),
            )
        except ConnectorError as error:
            if error.code == "unknown":
                raise KeyError(reference) from None
            raise ResolutionError(
                f"{path} on {self.sf_remote_host}: {error.message}"
            ) from None
        return _resolved(self, answer)

    # -- inside -----------------------------------------------------------------------------
    def _sf_live(self) -> bool:
        return self._sf_made and not self._sf_gone and self.sf_remote_address != ""

    def _sf_connector(self) -> Connector:
        process = self._sf_process
        connector = getattr(process, "placement", None)
        if connector is None:
            raise LifecycleError(
                f"{self.sf_complete_name()} is placed on {self.sf_remote_host}, but this "
                "process has no daemon connection", path=self.sf_complete_name(),
            )
        return connector  # type: ignore[no-any-return]

    def _sf_application(self) -> str:
        return self.sf_complete_name().split(":", 1)[0]

    def _sf_sent_description(self) -> ComponentDescription:
        """The subtree's description as sent: the liveness settings this handle sees are
        given to its root unless it sets its own (ATTRIB finds the same values there)."""
        assert self.sf_description is not None
        sent = self.sf_description.copy()
        sent.parent = None
        delay, factor = self.sf_liveness_settings()
        if "sfLivenessDelay" not in sent.attributes:
            sent.attributes["sfLivenessDelay"] = int(delay) if float(delay).is_integer() else delay
        if "sfLivenessFactor" not in sent.attributes:
            sent.attributes["sfLivenessFactor"] = int(factor)
        return sent

    def _sf_follow(self, op: str, what: str, *, cancellable: bool) -> dict[str, Any]:
        """Follow an operation on the other daemon until its outcome, the lifecycle lock
        released; a cancelled step asks that daemon to terminate the subtree at once."""
        connector = self._sf_connector()
        step = current_step()
        on_cancel = None
        if cancellable:
            def on_cancel() -> None:
                self._sf_cancel_remote(step.reason)
        with step.blocking(f"{what} on {self.sf_remote_host}", on_cancel=on_cancel):
            deadline = step.deadline
            while True:
                wait = FOLLOW_WAIT
                if deadline is not None:
                    wait = max(0.0, min(wait, deadline - time.monotonic()))
                view = connector.call(
                    self.sf_remote_address, "operation", op, OUTCOME_ONLY, wait,
                    timeout=wait + CALL_MARGIN,
                )
                if view.get("done"):
                    return dict(view.get("outcome") or {})
                if deadline is not None and time.monotonic() >= deadline:
                    raise EngineError(
                        f"{what} on {self.sf_remote_host} did not finish within "
                        f"{step.bound if hasattr(step, 'bound') else '?'} s"
                    )

    def _sf_cancel_remote(self, reason: str) -> None:
        """From a cancel thread: terminate the subtree there (its deploy or start fails)."""
        try:
            self._sf_connector().call(
                self.sf_remote_address, "subtree_terminate", self._sf_application(),
                self.sf_complete_name(),
                TerminationRecord.abnormal(reason or "cancelled", id=self.sf_complete_name()).to_dict(),
                uuid.uuid4().hex,
            )
        except EngineError as error:
            self.log.warning("cancelling on %s: %s", self.sf_remote_host, error)

    def _sf_send_terminate(self, record: TerminationRecord) -> str | ConnectorError:
        """``subtree_terminate`` on the other daemon: the operation id, or the error."""
        try:
            answer = self._sf_connector().call(
                self.sf_remote_address, "subtree_terminate", self._sf_application(),
                self.sf_complete_name(), record.to_dict(), uuid.uuid4().hex,
            )
            return str(answer["operation"])
        except ConnectorError as error:
            return error
        except (KeyError, TypeError):
            return ConnectorError("failed", f"{self.sf_remote_host} answered no operation")

    def _sf_check(self, outcome: dict[str, Any], phase: str) -> None:
        if int(outcome.get("exit", 1)) == 0:
            return
        found = outcome.get("record")
        record: dict[str, Any] = found if isinstance(found, dict) else {}
        description = record.get("description") or outcome.get("message") or f"{phase} failed"
        raise LifecycleError(
            f"{description} (on {self.sf_remote_host})",
            path=record.get("id") or self.sf_complete_name(), phase=phase,
        )

    def _sf_remote_ping(self) -> tuple[str, Any]:
        """In a pool thread: ``("ok", None)``, ``("missed", why)`` or ``("ended", record)``."""
        try:
            delay, _ = self.sf_liveness_settings()
        except EngineError:
            delay = 15.0
        try:
            answer = self._sf_connector().call(
                self.sf_remote_address, "subtree_ping", self._sf_application(),
                self.sf_complete_name(), timeout=max(1.0, delay),
            )
        except ConnectorError as error:
            if error.code == "unknown":
                return "ended", TerminationRecord.abnormal(
                    f"{self.sf_complete_name()} is no longer on {self.sf_remote_host}",
                    id=self.sf_complete_name(),
                ).to_dict()
            return "missed", error.message
        except Exception as error:  # noqa: BLE001 - a ping that fails is a miss
            return "missed", str(error)
        if answer.get("state") == "ended":
            return "ended", answer.get("record")
        return "ok", None


def _resolved(handle: Any, answer: dict[str, Any]) -> Any:
    """A ``subtree_resolve`` answer: a :class:`RemoteComponent` or the value."""
    if "component" in answer:
        return RemoteComponent(handle, str(answer["component"]))
    from sfpy.language.unparse import from_data

    return from_data(answer.get("value"))


class RemoteRootProcess:
    """Another daemon's root process as references see it: what ``HOST name`` yields, and
    what a placed subtree's root has above it on the parent's host.

    SmartFrog's ``HOST h:rootProcess:app:comp`` walks from there: ``rootProcess`` is the root
    process itself, an application name its root (when that daemon holds it), and every
    further part one ``subtree_resolve`` call to that daemon (a component comes back as a
    :class:`RemoteComponent`, a value as its value)."""

    __slots__ = ("address", "connector", "sf_remote_host")

    def __init__(self, connector: Connector, host: str, address: str) -> None:
        self.connector = connector
        self.sf_remote_host = host
        self.address = address

    def sf_complete_name(self) -> str:
        return f"HOST {self.sf_remote_host}"

    @property
    def sf_name(self) -> str:
        return "rootProcess"

    def sf_lookup(self, name: Any, first: bool) -> Any:
        if name == "rootProcess":
            return self
        if not isinstance(name, str) or not name or ":" in name:
            raise KeyError(name)
        try:
            self.connector.call(self.address, "ping", name)
        except ConnectorError as error:
            if error.code in ("unknown", "failed", "bad-request"):
                raise KeyError(name) from None
            raise ResolutionError(f"HOST {self.sf_remote_host}: {error.message}") from None
        return RemoteComponent(self, name)

    def sf_remote_lookup(self, path: str, reference: Any) -> Any:
        """Resolve ``reference`` from the component ``path`` on that daemon."""
        try:
            answer = self.connector.call(
                self.address, "subtree_resolve", path.split(":", 1)[0], path, str(reference)
            )
        except ConnectorError as error:
            if error.code == "unknown":
                raise KeyError(reference) from None
            raise ResolutionError(f"{path} on {self.sf_remote_host}: {error.message}") from None
        return _resolved(self, answer)

    def sf_names(self) -> list[str]:
        return []

    def sf_container(self, for_attrib: bool) -> Any:
        return None

    def sf_root(self) -> Any:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRootProcess) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)

    def __repr__(self) -> str:
        return f"<RemoteRootProcess {self.sf_remote_host} ({self.address})>"


def remote_host(connector: Connector, name: str) -> RemoteRootProcess:
    """``HOST name`` in a daemon: that host's root process (the host-name map, then DNS;
    this daemon itself too, through its own address)."""
    try:
        address = connector.locate(name)
    except ConnectorError as error:
        raise ResolutionError(f"HOST {name}: {error.message}") from None
    return RemoteRootProcess(connector, name, address)


class RemoteComponent:
    """A component of another host, as LAZY references see it (of a remote subtree, or one
    reached through ``HOST``): navigable, each lookup a remote resolution through its
    handle (the subtree's :class:`RemoteSubtree`, or a :class:`RemoteRootProcess`)."""

    __slots__ = ("handle", "path")

    def __init__(self, handle: Any, path: str) -> None:
        self.handle = handle
        self.path = path

    def sf_complete_name(self) -> str:
        return self.path

    @property
    def sf_name(self) -> str:
        return self.path.rsplit(":", 1)[-1]

    def sf_lookup(self, name: Any, first: bool) -> Any:
        return self.handle.sf_remote_lookup(self.path, name)

    def sf_names(self) -> list[str]:
        return []

    def sf_container(self, for_attrib: bool) -> Any:
        if ":" not in self.path:  # an application root: its root process
            return self.handle if isinstance(self.handle, RemoteRootProcess) else None
        parent = self.path.rsplit(":", 1)[0]
        if parent == self.handle.sf_complete_name():
            return self.handle
        return RemoteComponent(self.handle, parent)

    def sf_root(self) -> Any:
        return self.handle.sf_root()

    def sf_resolve(self, reference: str, default: Any = _MISSING) -> Any:
        """Resolve ``reference`` (text) from this component, on its host."""
        try:
            return self.handle.sf_remote_lookup(self.path, reference)
        except (KeyError, ResolutionError):
            if default is _MISSING:
                raise ResolutionError(
                    f"Unresolved Reference: {reference} from {self.path} on "
                    f"{self.handle.sf_remote_host}"
                ) from None
            return default

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteComponent) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"<RemoteComponent {self.path} on {self.handle.sf_remote_host}>"


# -- sfrun: no daemons --------------------------------------------------------------------
def names_this_host(host: str) -> bool:
    """Without a daemon: is ``host`` (with or without a port) this machine's name?"""
    text = host.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    if not text:
        return False
    names = {*_THIS_HOST_NAMES, socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return text.lower() in names


def check_without_daemons(description: ComponentDescription, path: str) -> None:
    """``sfrun`` deploys in its own process: a description that places a subtree on another
    host (``sfProcessHost``) is a description error there, naming the component."""
    from sfpy.engine.registry import UnknownComponentClass, lookup

    stack = [(description, path)]
    while stack:
        cd, where = stack.pop()
        host = cd.attributes.get("sfProcessHost")
        if host is not None and not (isinstance(host, str) and names_this_host(host)):
            raise DescriptionError(
                f"{where} has sfProcessHost {host!r}, another host: placing components on "
                "other hosts needs the daemons (sfstart HOST NAME FILE); sfrun deploys on "
                "this host only",
                position=cd.positions.get("sfProcessHost") or cd.position,
                path=where,
                phase="deploy",
            )
        name = cd.attributes.get("sfClass")
        try:
            cls = lookup(name) if isinstance(name, str) else None
        except UnknownComponentClass:
            cls = None
        if cls is not None:
            stack.extend((child, f"{where}:{key}") for key, child in cls.child_descriptions(cd))


__all__ = [
    "CALL_MARGIN",
    "FOLLOW_WAIT",
    "OUTCOME_ONLY",
    "Connector",
    "ConnectorError",
    "RemoteComponent",
    "RemoteRootProcess",
    "RemoteSubtree",
    "check_without_daemons",
    "names_this_host",
    "record_from_data",
    "remote_host",
]
