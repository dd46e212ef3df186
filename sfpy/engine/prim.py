"""SmartFrog's Prim: the base class of every component.

A component author subclasses :class:`Prim` (or :class:`~sfpy.engine.compound.Compound`) and
writes hooks; the engine calls them in SmartFrog's order and never two of one application
at the same time (see :mod:`sfpy.engine.lifecycle`):

``deploy()``
    All components of the tree exist (with their attributes, LAZY links resolvable) but none
    is started. Read and check attributes; prepare. Raising fails the deployment.
``start()``
    Every component of the tree has been deployed. Do the work (start processes, create
    disks). Raising fails the deployment.
``started()``
    This component *and everything below it* has started (called once, at the end of the
    start pass of its subtree, after the requests its children made while starting were
    carried out; not called if it is terminating by then). Create children that must come
    after the others here. Raising fails the deployment, as ``start()`` does.
``terminate(record)``
    Clean up. Called exactly once for every component whose ``deploy`` was called (even when
    ``deploy`` or ``start`` raised or never ran), after its children have terminated. Must
    tolerate a half-done deploy. Exceptions are logged and termination goes on.
``ping()``
    Liveness: called periodically once started (from the scheduler thread, so it must be
    quick). Raise :class:`~sfpy.engine.errors.LivenessError` (or anything) when dead;
    raise :class:`~sfpy.engine.errors.PingMissed` for "no answer", counted against
    ``sfLivenessFactor``.
``attribute_changed(name, old, new)``
    One of this component's attributes was added (``old`` is :data:`ABSENT`), replaced or
    removed (``new`` is :data:`ABSENT`) after deploy began.

Authors never override the ``sf_*`` methods nor ``__init__`` arguments (components are
created with no arguments, as in SmartFrog).
"""

from __future__ import annotations

import enum
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sfpy.engine.errors import EngineError, LifecycleError, LivenessError, ResolutionError
from sfpy.engine.resolve import Resolver, parse_reference
from sfpy.engine.termination import TerminationRecord
from sfpy.language.model import ComponentDescription, Reference

if TYPE_CHECKING:
    from sfpy.engine.compound import Compound
    from sfpy.engine.lifecycle import LifecycleLock
    from sfpy.engine.process import Process
    from sfpy.engine.scheduler import Timer

log = logging.getLogger("sfpy.engine")


class State(enum.Enum):
    """A component's lifecycle state, in the order they happen."""

    CONSTRUCTED = "constructed"
    DEPLOYED = "deployed"
    STARTED = "started"
    TERMINATING = "terminating"
    TERMINATED = "terminated"

    def __str__(self) -> str:
        return self.name


_ENDING = (State.TERMINATING, State.TERMINATED)


class _Absent:
    """The value of an attribute that is not there (``attribute_changed`` old/new)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT = _Absent()
_MISSING = object()

HOST_NAME = socket.gethostname()
_LIVENESS_DELAY = Reference(parse_reference("ATTRIB sfLivenessDelay").parts)
_LIVENESS_FACTOR = Reference(parse_reference("ATTRIB sfLivenessFactor").parts)
_terminated_lock = threading.Lock()


@functools.lru_cache(maxsize=1024)
def _reference_from_text(text: str) -> Reference:
    return parse_reference(text)


def describe_exception(error: BaseException) -> str:
    """How an exception reads in a record: our errors by message, others with their type."""
    from sfpy.errors import SfpyError

    if isinstance(error, SfpyError):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Prim:
    """A component: attributes from its description, a parent, a lifecycle.

    Attribute access goes through :meth:`sf_resolve` (LAZY references are resolved every
    time). ``self.log`` is a logger that names the component.
    """
    declared_attributes = frozenset('sfClass sfCodeBase sfDeployerClass sfExport sfLivenessDelay sfLivenessFactor sfProcessComponentName sfProcessHost sfProcessName sfShouldDetach sfShouldTerminate sfShouldTerminateQuietly sfSyncTerminate terminateTimeout'.split())  # what it reads

    #: SmartFrog's attribute for the child-less component; Compound sets it True.
    is_compound = False

    def __init__(self) -> None:
        self._name: str = "?"
        self._parent: Compound | None = None
        self._process: Process | None = None
        self._lifecycle: LifecycleLock | None = None
        self._context: dict[str, Any] = {}
        self._tags: dict[Any, set[str]] = {}
        self.sf_description: ComponentDescription | None = None
        self._state = State.CONSTRUCTED
        self.state_times: dict[State, float] = {State.CONSTRUCTED: time.time()}
        self._record: TerminationRecord | None = None
        self._terminated_event: threading.Event | None = None
        self._deploy_called = False
        self._timers: set[Timer] | None = None
        self._log: logging.LoggerAdapter | None = None
        self._liveness_cache: tuple[float, int] | None = None

    # ===========================================================================================
    # Hooks: override these.
    # ===========================================================================================
    def deploy(self) -> None:
        """Read and check attributes; prepare. All components exist, none has started."""

    def start(self) -> None:
        """Do the work. Every component of the tree has been deployed."""

    def started(self) -> None:
        """This component and its whole subtree have started (once; in the lifecycle lock).

        Children created here with ``sf_create_new_child`` are deployed and started at once;
        their failure raises :class:`~sfpy.engine.errors.LifecycleError` here."""

    def terminate(self, record: TerminationRecord) -> None:
        """Clean up (children already terminated). Must tolerate a half-done deploy."""

    def ping(self) -> None:
        """Liveness check, called from the scheduler thread: be quick; raise when dead."""

    def attribute_changed(self, name: str, old: Any, new: Any) -> None:
        """An attribute was added, replaced or removed at run time."""

    # ===========================================================================================
    # What a component can ask (the engine's API; do not override).
    # ===========================================================================================
    @property
    def sf_name(self) -> str:
        """The attribute name under which the parent holds this component."""
        return self._name

    @property
    def state(self) -> State:
        return self._state

    @property
    def sf_is_deployed(self) -> bool:
        return self._state in (State.DEPLOYED, State.STARTED) or (
            self._state in _ENDING and State.DEPLOYED in self.state_times
        )

    @property
    def sf_is_started(self) -> bool:
        return State.STARTED in self.state_times

    @property
    def sf_is_terminated(self) -> bool:
        return self._state is State.TERMINATED

    @property
    def sf_is_terminating(self) -> bool:
        return self._state in _ENDING

    @property
    def termination_record(self) -> TerminationRecord | None:
        """Why this component terminated (None while it runs)."""
        return self._record

    @property
    def log(self) -> logging.LoggerAdapter:
        if self._log is None:
            self._log = _ComponentLog(logging.getLogger("sfpy.component"), {"component": self})
        return self._log

    def sf_parent(self) -> Compound | None:
        return self._parent

    def sf_process(self) -> Process | None:
        return self._process

    def sf_root(self) -> Prim:
        """The root of this component's tree (its application, or a detached subtree)."""
        node = self
        while node._parent is not None:
            node = node._parent
        return node

    def sf_complete_name(self) -> str:
        """``sfConfig:vm1:disk``: names from the application root down."""
        names = []
        node: Prim | None = self
        while node is not None:
            names.append(node._name)
            node = node._parent
        return ":".join(reversed(names))

    def sf_class_name(self) -> str:
        value = self._context.get("sfClass")
        return value if isinstance(value, str) else type(self).__name__

    # -- attributes -------------------------------------------------------------------------
    def sf_resolve(self, reference: str | Reference, default: Any = _MISSING) -> Any:
        """Read an attribute or follow a reference from this component.

        ``reference`` is a :class:`Reference` or text such as ``"size"``, ``"disk:path"``,
        ``"PARENT:shell"``, ``"ATTRIB sfLivenessDelay"``. LAZY references found on the way
        are resolved now, against the live tree; a link to a component yields the component.
        Without ``default`` an unresolvable reference raises
        :class:`~sfpy.engine.errors.ResolutionError`.
        """
        if isinstance(reference, str):
            reference = _reference_from_text(reference)
        try:
            return Resolver(self._process).resolve(reference, self)
        except ResolutionError:
            if default is _MISSING:
                raise
            return default
        except RecursionError:
            if default is _MISSING:
                raise ResolutionError(
                    f"reference {reference!r} from {self.sf_complete_name()} is cyclic"
                ) from None
            return default

    def sf_attributes(self) -> list[str]:
        """The names of this component's attributes, in order."""
        return list(self._context)

    def sf_context(self) -> dict[str, Any]:
        """A copy of the attributes as they are held (LAZY references unresolved)."""
        return dict(self._context)

    def sf_has_attribute(self, name: str) -> bool:
        return name in self._context

    def sf_add_attribute(self, name: str, value: Any) -> None:
        """Add an attribute; an existing one is an error (SmartFrog's sfAddAttribute)."""
        if name in self._context:
            raise EngineError(f"Attribute {name} already present in {self.sf_complete_name()}")
        self._context[name] = value
        self._attribute_changed(name, ABSENT, value)

    def sf_replace_attribute(self, name: str, value: Any) -> Any:
        """Add or replace an attribute; returns the old value (or :data:`ABSENT`)."""
        old = self._context.get(name, ABSENT)
        self._context[name] = value
        self._forget_child_value(old, value)
        self._attribute_changed(name, old, value)
        return old

    def sf_remove_attribute(self, name: str) -> Any:
        """Remove an attribute; returns the old value (or :data:`ABSENT` when there was none)."""
        old = self._context.pop(name, ABSENT)
        if old is not ABSENT:
            self._forget_child_value(old, ABSENT)
            self._attribute_changed(name, old, ABSENT)
        return old

    # -- lifecycle requests ----------------------------------------------------------------------
    def sf_terminate(self, record: TerminationRecord | None = None) -> None:
        """Terminate this component (and its children); its parent is told and, by default,
        terminates with the same record. Returns at once: the termination runs when the
        current hook returns, or in the application's lifecycle thread."""
        record = record or TerminationRecord.normal("terminated on request")
        self._request(lambda: self._sf_terminate(record, notify=True))

    def sf_terminate_quietly(self, record: TerminationRecord | None = None) -> None:
        """Terminate without telling the parent (SmartFrog's sfTerminateQuietlyWith)."""
        record = record or TerminationRecord.normal("terminated on request")
        self._request(lambda: self._sf_terminate(record, notify=False))

    def sf_detach(self) -> None:
        """Leave the parent: this subtree becomes an application of the process, and its
        termination no longer terminates the former parent."""
        lock = self._lifecycle
        if lock is None:
            raise LifecycleError("component is not deployed", path=self.sf_complete_name())
        with lock:
            self._sf_detach()

    def sf_detach_and_terminate(self, record: TerminationRecord | None = None) -> None:
        record = record or TerminationRecord.normal("terminated on request")

        def detach_and_terminate() -> None:
            self._sf_detach()
            self._sf_terminate(record, notify=True)

        self._request(detach_and_terminate)

    def sf_work_done(self, record: TerminationRecord | None = None) -> None:
        """This component finished its work: honour ``sfShouldDetach``, ``sfShouldTerminate``
        and ``sfShouldTerminateQuietly`` (SmartFrog's workflow-enabled prims)."""
        record = record or TerminationRecord.normal(f"{self.sf_complete_name()} finished")
        detach = self.sf_resolve("sfShouldDetach", False) is True
        terminate = self.sf_resolve("sfShouldTerminate", False) is True
        quietly = self.sf_resolve("sfShouldTerminateQuietly", False) is True

        def work_done() -> None:
            if detach:
                self._sf_detach()
            if terminate or quietly:
                self._sf_terminate(record, notify=not quietly)

        if detach or terminate or quietly:
            self._request(work_done)

    def wait_terminated(self, timeout: float | None = None) -> TerminationRecord | None:
        """Block until this component has terminated; its record, or None on timeout.

        Never call it from a hook for a component of the same application."""
        if self._state is State.TERMINATED:
            return self._record
        with _terminated_lock:
            if self._terminated_event is None:
                self._terminated_event = threading.Event()
            event = self._terminated_event
        if self._state is State.TERMINATED:
            return self._record
        event.wait(timeout)
        return self._record if self._state is State.TERMINATED else None

    # -- timers ---------------------------------------------------------------------------------
    def schedule(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Call ``callback(*args)`` once after ``delay`` seconds, like a hook (serialised with
        the application's lifecycle; never after this component began terminating; an
        exception terminates the component abnormally). Cancelled at termination."""
        return self._schedule(delay, None, callback, args)

    def schedule_every(self, interval: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Like :meth:`schedule`, every ``interval`` seconds until cancelled or terminated."""
        return self._schedule(interval, interval, callback, args)

    def _schedule(
        self,
        delay: float,
        interval: float | None,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> Timer:
        process = self._process
        if process is None or self._state in _ENDING:
            raise LifecycleError(
                "cannot schedule: component not running", path=self.sf_complete_name()
            )
        timer_box: list[Timer] = []

        def run() -> None:
            timer = timer_box[0]
            if timer.cancelled or self._state in _ENDING:
                return
            if interval is None and self._timers is not None:
                self._timers.discard(timer)
            try:
                self._call_hook("timer", callback, *args)
            except LifecycleError as error:
                self._fail(error)

        def fire() -> None:
            lock = self._lifecycle
            if lock is not None and not timer_box[0].cancelled:
                lock.post(run)

        if interval is None:
            timer = process.scheduler.call_later(delay, fire)
        else:
            timer = process.scheduler.call_every(interval, fire)
        timer_box.append(timer)
        if self._timers is None:
            self._timers = set()
        self._timers.add(timer)
        return timer

    # ===========================================================================================
    # Engine internals (also the protocol a remote handle will implement in step 3).
    # ===========================================================================================
    @classmethod
    def child_descriptions(
        cls, description: ComponentDescription
    ) -> list[tuple[str, ComponentDescription]]:
        """The descriptions in ``description`` that become components under this one (checked
        for a registered sfClass before anything is deployed). A Prim has none."""
        return []

    def _sf_build(
        self,
        name: str,
        parent: Compound | None,
        description: ComponentDescription,
        process: Process,
        lifecycle: LifecycleLock,
    ) -> None:
        """SmartFrog's sfDeployWith: take the description's attributes, add the runtime ones."""
        self._name = name
        self._parent = parent
        self._process = process
        self._lifecycle = lifecycle
        self.sf_description = description
        context = dict(description.attributes)
        context["sfHost"] = HOST_NAME
        context["sfProcess"] = process.name
        self._context = context
        self._tags = description.tags
        process._state_changed(self, State.CONSTRUCTED)

    def _call_hook(self, phase: str, hook: Callable[..., Any], *args: Any) -> Any:
        """Run a hook, turning any exception into a LifecycleError naming this component."""
        lock = self._lifecycle
        assert lock is not None
        lock.hook_depth += 1
        try:
            return hook(*args)
        except LifecycleError as error:
            if error.path is None:
                error.path = self.sf_complete_name()
                error.phase = error.phase or phase
            raise
        except RecursionError:
            raise LifecycleError(
                f"{phase} failed: recursion too deep", path=self.sf_complete_name(), phase=phase
            ) from None
        except Exception as error:  # noqa: BLE001 - any failure of author code is a component failure
            raise LifecycleError(
                f"{phase} failed: {describe_exception(error)}",
                path=self.sf_complete_name(),
                phase=phase,
                cause=error,
            ) from error
        finally:
            lock.hook_depth -= 1

    def _set_state(self, state: State) -> None:
        self._state = state
        self.state_times[state] = time.time()
        process = self._process
        if process is not None:
            process._state_changed(self, state)

    def _sf_deploy(self) -> None:
        """The deploy pass for this component (Compound: then its children)."""
        if self._state is not State.CONSTRUCTED:
            return
        self._deploy_called = True
        self._call_hook("deploy", self.deploy)
        if self._state is State.CONSTRUCTED:
            self._set_state(State.DEPLOYED)

    def _sf_start(self) -> None:
        """The start pass for this component: ``start``, its children's, then ``started``."""
        if self._state is not State.DEPLOYED:
            return
        self._call_hook("start", self.start)
        if self._state is State.DEPLOYED:
            self._set_state(State.STARTED)
            self._watch_liveness()
        self._start_children()
        if type(self).started is not Prim.started:  # most components have none: no cost
            lock = self._lifecycle
            if lock is not None and lock.pending():
                lock.drain()  # what the children asked for while starting goes first
            if self._state is State.STARTED:
                self._call_hook("start", self.started)

    def _start_children(self) -> None:
        """Compound starts its children here."""

    def _sf_terminate(self, record: TerminationRecord, notify: bool = True) -> None:
        """Terminate (children first, in reverse order), run the terminate hook, tell the parent.

        Runs once; later calls do nothing. Caller holds the lifecycle lock.
        """
        if self._state in _ENDING:
            return
        record = record.with_id(self.sf_complete_name())
        self._record = record
        self._set_state(State.TERMINATING)
        if self._timers:
            for timer in self._timers:
                timer.cancel()
            self._timers = None
        self._terminate_children(record)
        if self._deploy_called:
            try:
                self._call_hook("terminate", self.terminate, record)
            except LifecycleError as error:
                self.log.error("%s", error)
                if self._process is not None:
                    self._process._cleanup_failed(self, error)
        self._set_state(State.TERMINATED)
        with _terminated_lock:
            event = self._terminated_event
        if event is not None:
            event.set()
        parent = self._parent
        if parent is not None:
            if notify:
                parent._sf_child_terminated(self, record)
            elif parent._state not in _ENDING:
                parent._sf_forget_child(self)
        elif self._process is not None:
            self._process._application_terminated(self, record)

    def _terminate_children(self, record: TerminationRecord) -> None:
        """Compound terminates its children here."""

    def _sf_detach(self) -> None:
        parent = self._parent
        if parent is None or self._process is None:
            return
        parent._sf_remove_child(self)
        self._parent = None
        self._process._adopt(self)
        if self._state is State.STARTED:
            self._watch_liveness()

    def _request(self, request: Callable[[], None]) -> None:
        lock = self._lifecycle
        if lock is None:  # never built: nothing ran, nothing to serialise with
            request()
        else:
            lock.submit(request)

    def _fail(self, error: BaseException) -> None:
        """Terminate abnormally because of ``error`` (caller holds the lifecycle lock)."""
        path = getattr(error, "path", None) or self.sf_complete_name()
        self._sf_terminate(
            TerminationRecord.abnormal(
                str(error) if isinstance(error, LifecycleError) else describe_exception(error),
                id=path,
                cause=error,
            ),
            notify=True,
        )

    def _attribute_changed(self, name: str, old: Any, new: Any) -> None:
        if name in ("sfLivenessDelay", "sfLivenessFactor"):
            self._liveness_cache = None  # children started later see the new value
        if not self._deploy_called or self._state in _ENDING or self._lifecycle is None:
            return

        def deliver() -> None:
            if self._state in _ENDING:
                return
            try:
                self._call_hook("attribute_changed", self.attribute_changed, name, old, new)
            except LifecycleError as error:
                self._fail(error)

        self._lifecycle.submit(deliver)

    def _forget_child_value(self, old: Any, new: Any) -> None:
        """Compound: an attribute that held a child no longer does."""

    # -- liveness -------------------------------------------------------------------------------
    def sf_ping(self, source: Any = None) -> None:
        """SmartFrog's sfPing: fails for a terminated component, else runs the ping hook."""
        if self._state in _ENDING:
            raise LivenessError(f"{self.sf_complete_name()} is terminated")
        self.ping()

    def _liveness_settings(self) -> tuple[float, int]:
        """``ATTRIB sfLivenessDelay``/``sfLivenessFactor``: own attributes, else the parent's
        settings (already known: parents start first), else the process defaults. Cached
        until one of the two attributes changes here."""
        cached = self._liveness_cache
        if cached is not None:
            return cached
        cached = self._liveness_cache = self._compute_liveness_settings()
        return cached

    def _compute_liveness_settings(self) -> tuple[float, int]:
        context = self._context
        parent = self._parent
        inherited = (
            parent._liveness_settings()
            if parent is not None
            and ("sfLivenessDelay" not in context or "sfLivenessFactor" not in context)
            else None
        )
        if "sfLivenessDelay" in context or inherited is None:
            delay = self.sf_resolve(_LIVENESS_DELAY, 0)
        else:
            delay = inherited[0]
        if "sfLivenessFactor" in context or inherited is None:
            factor = self.sf_resolve(_LIVENESS_FACTOR, 2)
        else:
            factor = inherited[1]
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise LifecycleError(
                f"sfLivenessDelay must be a number of seconds >= 0, not {delay!r}",
                path=self.sf_complete_name(),
                phase="start",
            )
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1:
            raise LifecycleError(
                f"sfLivenessFactor must be a number >= 1, not {factor!r}",
                path=self.sf_complete_name(),
                phase="start",
            )
        return float(delay), int(factor)

    def _watch_liveness(self) -> None:
        """Started: the parent (or the process, for a root) begins pinging this component."""
        try:
            delay, factor = self._liveness_settings()
        except LifecycleError as error:
            self.log.error("%s; liveness is off for this component", error)
            return
        if delay <= 0:
            return
        watcher = self._parent if self._parent is not None else self._process
        if watcher is not None:
            watcher._liveness_monitor().watch(self, delay, factor)

    # -- navigation protocol used by sfpy.engine.resolve ----------------------------------------
    def _sf_lookup(self, name: Any, first: bool) -> Any:
        context = self._context
        if name in context:
            if first or "sfLocal" not in self._tags.get(name, ()):
                return context[name]
        raise KeyError(name)

    def _sf_names(self) -> list[str]:
        return [key for key in self._context if isinstance(key, str)]

    def _sf_container(self, for_attrib: bool) -> Any:
        if self._parent is not None:
            return self._parent
        return self._process if for_attrib else None

    def _sf_root(self) -> Prim:
        return self.sf_root()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.sf_complete_name()} {self._state}>"


class _ComponentLog(logging.LoggerAdapter):
    """Prefixes messages with the component's complete name."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        component = self.extra["component"]  # type: ignore[index]
        return f"{component.sf_complete_name()}: {msg}", kwargs


def iter_tree(root: Prim) -> Iterable[Prim]:
    """Every component of a tree, parents before children, in definition order."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        children = getattr(node, "_children", None)
        if children:
            stack.extend(reversed(children))
