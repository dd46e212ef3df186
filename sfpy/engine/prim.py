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

from sfpy.engine.contracts import check_component_class
from sfpy.engine.errors import EngineError, LifecycleError, LivenessError, ResolutionError
from sfpy.engine.resolve import Resolver, parse_reference
from sfpy.engine.steps import HookStep
from sfpy.engine.termination import TerminationRecord
from sfpy.host.work import CURRENT_STEP, WorkCancelled
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


def _is_plain_name(text: str) -> bool:
    """``size``, ``startScript``: a reference to an own attribute, nothing more."""
    return text.isidentifier()


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_component_class(cls)

    def __init__(self) -> None:
        self._sf_name: str = "?"
        self._sf_parent: Compound | None = None
        self._sf_process: Process | None = None
        self._sf_lifecycle: LifecycleLock | None = None
        self._sf_context: dict[str, Any] = {}
        self._sf_tags: dict[Any, set[str]] = {}
        self.sf_description: ComponentDescription | None = None
        self._sf_state = State.CONSTRUCTED
        self.state_times: dict[State, float] = {State.CONSTRUCTED: time.time()}
        self._sf_record: TerminationRecord | None = None
        self._sf_terminated_event: threading.Event | None = None
        self._sf_deploy_called = False
        self._sf_timers: set[Timer] | None = None
        self._sf_log: logging.LoggerAdapter | None = None
        self._sf_liveness_cache: tuple[float, int] | None = None
        self._sf_terminating_thread: int | None = None

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

    def adopt(self, entries: list[Any]) -> bool:
        """After its daemon restarted: can this component take back what it made?

        The daemon rebuilt the component from its description (no deploy or start hook ran
        again; ``deploy`` is where the component would have set its fields, so read what is
        needed here) and gives it its open journal entries
        (:class:`sfpy.host.journal.Entry`: what it made and had not undone). Return True to
        run on as STARTED, owning them again (its terminate hook undoes them later, as after
        a start); False when what it made is gone or cannot be taken back: the whole
        application is then cleaned through the journal instead. Raising counts as False.
        Start nothing here (no thread, no command): another component may still refuse.

        The default: adoptable when it made nothing that is still there (no open entry),
        unless it is a workflow container (``deploy_children_with_parent`` False), whose
        children were made while it ran and whose progress no journal holds."""
        return not entries and getattr(self, "deploy_children_with_parent", True) is not False

    # ===========================================================================================
    # What a component can ask (the engine's API; do not override).
    # ===========================================================================================
    @property
    def sf_name(self) -> str:
        """The attribute name under which the parent holds this component."""
        return self._sf_name

    @property
    def state(self) -> State:
        return self._sf_state

    @property
    def sf_is_deployed(self) -> bool:
        return self._sf_state in (State.DEPLOYED, State.STARTED) or (
            self._sf_state in _ENDING and State.DEPLOYED in self.state_times
        )

    @property
    def sf_is_started(self) -> bool:
        return State.STARTED in self.state_times

    @property
    def sf_is_terminated(self) -> bool:
        return self._sf_state is State.TERMINATED

    @property
    def sf_is_terminating(self) -> bool:
        return self._sf_state in _ENDING

    @property
    def termination_record(self) -> TerminationRecord | None:
        """Why this component terminated (None while it runs)."""
        return self._sf_record

    @property
    def log(self) -> logging.LoggerAdapter:
        if self._sf_log is None:
            self._sf_log = _ComponentLog(logging.getLogger("sfpy.component"), {"component": self})
        return self._sf_log

    def sf_parent(self) -> Compound | None:
        return self._sf_parent

    def sf_process(self) -> Process | None:
        return self._sf_process

    def sf_root(self) -> Prim:
        """The root of this component's tree (its application, or a detached subtree)."""
        node = self
        while node._sf_parent is not None:
            node = node._sf_parent
        return node

    def sf_complete_name(self) -> str:
        """``sfConfig:vm1:disk``: names from the application root down."""
        names = []
        node: Prim | None = self
        while node is not None:
            names.append(node._sf_name)
            node = node._sf_parent
        return ":".join(reversed(names))

    @property
    def sf_lifecycle(self) -> LifecycleLock | None:
        """The application's lifecycle lock (None before the component is built)."""
        return self._sf_lifecycle

    def sf_set_runtime_attribute(self, name: str, value: Any) -> None:
        """The engine's own run-time attributes (``sfDeployTime``…): set without notices."""
        self._sf_context[name] = value

    def sf_adopted_as(self, name: str) -> None:
        """A detached subtree is held by its process under ``name`` (Process.adopt)."""
        self._sf_name = name

    def sf_class_name(self) -> str:
        value = self._sf_context.get("sfClass")
        return value if isinstance(value, str) else type(self).__name__

    # -- attributes -------------------------------------------------------------------------
    def sf_resolve(self, reference: str | Reference, default: Any = _MISSING) -> Any:
        """Read an attribute or follow a reference from this component.

        ``reference`` is a :class:`Reference` or text such as ``"size"``, ``"disk:path"``,
        ``"PARENT:shell"``, ``"ATTRIB sfLivenessDelay"``. LAZY references found on the way
        are resolved now, against the live tree; a link to a component yields the component.
        Without ``default`` an unresolvable reference raises
        :class:`~sfpy.engine.errors.ResolutionError`. For a plain attribute name ``default``
        stands for the attribute being *absent*: an attribute that is there but whose value
        cannot be resolved (a LAZY reference to something missing) raises all the same.
        """
        if isinstance(reference, str):
            if default is not _MISSING and _is_plain_name(reference):
                # The default stands for an absent attribute only: a value that is there but
                # cannot be resolved (a LAZY reference gone wrong) is an error, never "absent".
                if reference not in self._sf_context:
                    return default
                default = _MISSING
            reference = _reference_from_text(reference)
        try:
            return Resolver(self._sf_process).resolve(reference, self)
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

    # -- typed attribute readers: a clear error naming the attribute, not a TypeError later ---
    def sf_integer(self, name: str, default: Any = _MISSING) -> int:
        """An attribute that must be a whole number (``time``, ``retry``, ``repeat``…)."""
        value = self.sf_resolve(name, default) if default is not _MISSING else self.sf_resolve(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise EngineError(
                f"attribute {name} of {self.sf_complete_name()} must be an integer, "
                f"not {value!r}"
            )
        return int(value)

    def sf_boolean(self, name: str, default: Any = _MISSING) -> bool:
        """An attribute that must be ``true`` or ``false``."""
        value = self.sf_resolve(name, default) if default is not _MISSING else self.sf_resolve(name)
        if not isinstance(value, bool):
            raise EngineError(
                f"attribute {name} of {self.sf_complete_name()} must be true or false, "
                f"not {value!r}"
            )
        return value

    def sf_string(self, name: str, default: Any = _MISSING) -> str:
        """An attribute that must be a string."""
        value = self.sf_resolve(name, default) if default is not _MISSING else self.sf_resolve(name)
        if not isinstance(value, str):
            raise EngineError(
                f"attribute {name} of {self.sf_complete_name()} must be a string, not {value!r}"
            )
        return value

    def sf_seconds(self, name: str, default: Any = _MISSING) -> float:
        """An attribute that must be a number of seconds >= 0 (Integer, Long, Float, Double)."""
        value = self.sf_resolve(name, default) if default is not _MISSING else self.sf_resolve(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise EngineError(
                f"{name} of {self.sf_complete_name()} must be a number of seconds >= 0, "
                f"not {value!r}"
            )
        return float(value)

    def sf_attributes(self) -> list[str]:
        """The names of this component's attributes, in order."""
        return list(self._sf_context)

    def sf_context(self) -> dict[str, Any]:
        """A copy of the attributes as they are held (LAZY references unresolved)."""
        return dict(self._sf_context)

    def sf_has_attribute(self, name: str) -> bool:
        return name in self._sf_context

    def sf_add_attribute(self, name: str, value: Any) -> None:
        """Add an attribute; an existing one is an error (SmartFrog's sfAddAttribute)."""
        if name in self._sf_context:
            raise EngineError(f"Attribute {name} already present in {self.sf_complete_name()}")
        self._sf_context[name] = value
        self._sf_attribute_changed(name, ABSENT, value)

    def sf_replace_attribute(self, name: str, value: Any) -> Any:
        """Add or replace an attribute; returns the old value (or :data:`ABSENT`)."""
        old = self._sf_context.get(name, ABSENT)
        self._sf_context[name] = value
        self._sf_forget_child_value(old, value)
        self._sf_attribute_changed(name, old, value)
        return old

    def sf_remove_attribute(self, name: str) -> Any:
        """Remove an attribute; returns the old value (or :data:`ABSENT` when there was none)."""
        old = self._sf_context.pop(name, ABSENT)
        if old is not ABSENT:
            self._sf_forget_child_value(old, ABSENT)
            self._sf_attribute_changed(name, old, ABSENT)
        return old

    # -- lifecycle requests ----------------------------------------------------------------------
    def sf_terminate(self, record: TerminationRecord | None = None) -> None:
        """Terminate this component (and its children); its parent is told and, by default,
        terminates with the same record. Returns at once: the termination runs when the
        current hook returns, or in the application's lifecycle thread."""
        record = record or TerminationRecord.normal("terminated on request")
        self._sf_request(lambda: self.sf_terminate_now(record, notify=True))

    def sf_terminate_quietly(self, record: TerminationRecord | None = None) -> None:
        """Terminate without telling the parent (SmartFrog's sfTerminateQuietlyWith)."""
        record = record or TerminationRecord.normal("terminated on request")
        self._sf_request(lambda: self.sf_terminate_now(record, notify=False))

    def sf_detach(self) -> None:
        """Leave the parent: this subtree becomes an application of the process, and its
        termination no longer terminates the former parent."""
        lock = self._sf_lifecycle
        if lock is None:
            raise LifecycleError("component is not deployed", path=self.sf_complete_name())
        with lock:
            self.sf_detach_now()

    def sf_detach_and_terminate(self, record: TerminationRecord | None = None) -> None:
        record = record or TerminationRecord.normal("terminated on request")

        def detach_and_terminate() -> None:
            self.sf_detach_now()
            self.sf_terminate_now(record, notify=True)

        self._sf_request(detach_and_terminate)

    def sf_work_done(
        self, record: TerminationRecord | None = None, *, terminate_by_default: bool = False
    ) -> None:
        """This component finished its work: honour ``sfShouldDetach``, ``sfShouldTerminate``
        and ``sfShouldTerminateQuietly`` (SmartFrog's ComponentHelper). Workflow components
        pass ``terminate_by_default=True``: they end when done unless ``sfShouldTerminate
        false`` says otherwise; other components stay unless asked to end."""
        record = record or TerminationRecord.normal(f"{self.sf_complete_name()} finished")
        detach = self.sf_resolve("sfShouldDetach", False) is True
        quietly = self.sf_resolve("sfShouldTerminateQuietly", False) is True
        terminate = self.sf_resolve("sfShouldTerminate", terminate_by_default) is True
        if detach and self._sf_parent is not None:
            self.sf_detach()
        if quietly:
            self.sf_terminate_quietly(record)
        elif terminate:
            self.sf_terminate(record)

    def wait_terminated(self, timeout: float | None = None) -> TerminationRecord | None:
        """Block until this component has terminated; its record, or None on timeout.

        Never call it from a hook for a component of the same application."""
        if self._sf_state is State.TERMINATED:
            return self._sf_record
        with _terminated_lock:
            if self._sf_terminated_event is None:
                self._sf_terminated_event = threading.Event()
            event = self._sf_terminated_event
        if self._sf_state is State.TERMINATED:
            return self._sf_record
        event.wait(timeout)
        return self._sf_record if self._sf_state is State.TERMINATED else None

    # -- timers ---------------------------------------------------------------------------------
    def schedule(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Call ``callback(*args)`` once after ``delay`` seconds, like a hook (serialised with
        the application's lifecycle; never after this component began terminating; an
        exception terminates the component abnormally). Cancelled at termination."""
        return self._sf_schedule(delay, None, callback, args)

    def schedule_every(self, interval: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Like :meth:`schedule`, every ``interval`` seconds until cancelled or terminated."""
        return self._sf_schedule(interval, interval, callback, args)

    def _sf_schedule(
        self,
        delay: float,
        interval: float | None,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> Timer:
        process = self._sf_process
        if process is None or self._sf_state in _ENDING:
            raise LifecycleError(
                "cannot schedule: component not running", path=self.sf_complete_name()
            )
        timer_box: list[Timer] = []

        def run() -> None:
            timer = timer_box[0]
            if timer.cancelled or self._sf_state in _ENDING:
                return
            if interval is None and self._sf_timers is not None:
                self._sf_timers.discard(timer)
            try:
                self._sf_call_hook("timer", callback, *args)
            except LifecycleError as error:
                self.sf_fail(error)

        def fire() -> None:
            lock = self._sf_lifecycle
            if lock is not None and not timer_box[0].cancelled:
                lock.post(run)

        if interval is None:
            timer = process.scheduler.call_later(delay, fire)
        else:
            timer = process.scheduler.call_every(interval, fire)
        timer_box.append(timer)
        if self._sf_timers is None:
            self._sf_timers = set()
        self._sf_timers.add(timer)
        return timer

    # ===========================================================================================
    # Engine internals (also the protocol a remote handle of the daemons will implement).
    # ===========================================================================================
    @classmethod
    def child_descriptions(
        cls, description: ComponentDescription
    ) -> list[tuple[str, ComponentDescription]]:
        """The descriptions in ``description`` that become components under this one (checked
        for a registered sfClass before anything is deployed). A Prim has none."""
        return []

    def sf_build(
        self,
        name: str,
        parent: Compound | None,
        description: ComponentDescription,
        process: Process,
        lifecycle: LifecycleLock,
    ) -> None:
        """SmartFrog's sfDeployWith: take the description's attributes, add the runtime ones."""
        self._sf_name = name
        self._sf_parent = parent
        self._sf_process = process
        self._sf_lifecycle = lifecycle
        self.sf_description = description
        context = dict(description.attributes)
        context["sfHost"] = HOST_NAME
        context["sfProcess"] = process.name
        self._sf_context = context
        self._sf_tags = description.tags
        process.state_changed(self, State.CONSTRUCTED)

    def _sf_call_hook(self, phase: str, hook: Callable[..., Any], *args: Any) -> Any:
        """Run a hook as a step (:mod:`sfpy.engine.steps`), turning any exception into a
        LifecycleError naming this component."""
        lock = self._sf_lifecycle
        assert lock is not None
        step = HookStep(
            self, phase, lock, self._sf_terminate_bound() if phase == "terminate" else None
        )
        steps = lock.active_steps
        steps.add(step)
        token = CURRENT_STEP.set(step)
        lock.hook_depth += 1
        try:
            return hook(*args)
        except LifecycleError as error:
            if error.path is None:
                error.path = self.sf_complete_name()
                error.phase = error.phase or phase
            raise
        except WorkCancelled as error:
            raise LifecycleError(
                f"{phase} cancelled: {error}", path=self.sf_complete_name(), phase=phase
            ) from None
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
            CURRENT_STEP.reset(token)
            steps.discard(step)
            lock.notify()

    def _sf_terminate_bound(self) -> float:
        """Seconds the terminate hook's commands may take in all: ``terminateTimeout``, else
        the process's ``terminate_timeout``."""
        process = self._sf_process
        default = process.terminate_timeout if process is not None else 60.0
        try:
            value = self.sf_resolve("terminateTimeout", default)
        except EngineError:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.log.warning("terminateTimeout must be a number of seconds > 0, not %r", value)
            return default
        return float(value)

    def _sf_set_state(self, state: State) -> None:
        self._sf_state = state
        self.state_times[state] = time.time()
        process = self._sf_process
        if process is not None:
            process.state_changed(self, state)

    def sf_deploy_pass(self) -> None:
        """The deploy pass for this component (Compound: then its children)."""
        if self._sf_state is not State.CONSTRUCTED:
            return
        self._sf_deploy_called = True
        self._sf_call_hook("deploy", self.deploy)
        if self._sf_state is State.CONSTRUCTED:
            self._sf_set_state(State.DEPLOYED)

    def sf_start_pass(self) -> None:
        """The start pass for this component: ``start``, its children's, then ``started``."""
        if self._sf_state is not State.DEPLOYED:
            return
        self._sf_call_hook("start", self.start)
        if self._sf_state is State.DEPLOYED:
            self._sf_set_state(State.STARTED)
            self._sf_watch_liveness()
        self._sf_start_children()
        if type(self).started is not Prim.started:  # most components have none: no cost
            lock = self._sf_lifecycle
            if lock is not None and lock.pending():
                lock.drain()  # what the children asked for while starting goes first
            if self._sf_state is State.STARTED:
                self._sf_call_hook("start", self.started)

    def _sf_start_children(self) -> None:
        """Compound starts its children here."""

    def sf_adopt(self, entries: list[Any]) -> bool:
        """Re-adoption after a daemon restart: the ``adopt`` hook with this component's open
        journal entries (see :meth:`adopt`). Caller holds the lifecycle lock."""
        try:
            return self._sf_call_hook("adopt", self.adopt, list(entries)) is True
        except LifecycleError as error:
            self.log.warning("cannot be re-adopted: %s", error)
            return False

    def sf_mark_adopted(self) -> None:
        """Every component of the application adopted: DEPLOYED then STARTED as a start
        pass would leave it (the hooks are not run: their work is what was adopted), its
        terminate hook due, its parent pinging it. Parents first; caller holds the lock."""
        if self._sf_state is not State.CONSTRUCTED:
            return
        self._sf_deploy_called = True
        self._sf_set_state(State.DEPLOYED)
        self._sf_set_state(State.STARTED)
        self._sf_watch_liveness()

    def sf_terminate_now(self, record: TerminationRecord, notify: bool = True) -> None:
        """Terminate (children first, in reverse order), run the terminate hook, tell the parent.

        Runs once; later calls do nothing. Caller holds the lifecycle lock.
        """
        if self._sf_state in _ENDING:
            return
        record = record.with_id(self.sf_complete_name())
        self._sf_record = record
        self._sf_terminating_thread = threading.get_ident()
        self._sf_set_state(State.TERMINATING)
        if self._sf_timers:
            for timer in self._sf_timers:
                timer.cancel()
            self._sf_timers = None
        lock = self._sf_lifecycle
        if lock is not None and lock.active_steps:
            self._sf_cancel_steps(lock, record)
        self._sf_terminate_children(record)
        if lock is not None and lock.active_steps:
            me = self._sf_terminating_thread
            # Terminate hooks run after the cancelled hooks of this component returned.
            lock.wait_until(
                lambda: not any(
                    step.component is self and step.thread != me
                    for step in list(lock.active_steps)
                )
            )
        if self._sf_deploy_called:
            try:
                self._sf_call_hook("terminate", self.terminate, record)
            except LifecycleError as error:
                self.log.error("%s", error)
                if self._sf_process is not None:
                    self._sf_process.cleanup_failed(self, error)
        self._sf_set_state(State.TERMINATED)
        with _terminated_lock:
            event = self._sf_terminated_event
        if event is not None:
            event.set()
        if lock is not None:
            lock.notify()
        parent = self._sf_parent
        if parent is not None:
            if notify:
                parent.sf_child_terminated(self, record)
            elif parent._sf_state not in _ENDING:
                parent.sf_forget_child(self)
        elif self._sf_process is not None:
            self._sf_process.application_terminated(self, record)

    def _sf_cancel_steps(self, lock: LifecycleLock, record: TerminationRecord) -> None:
        """Cancel the deploy/start/… steps in progress in other threads in this subtree: the
        long work they wait for is stopped at once (terminate steps are never cancelled)."""
        me = threading.get_ident()
        reason = record.description or f"{self.sf_complete_name()} terminated"
        for step in list(lock.active_steps):
            if step.thread != me and step.phase != "terminate" and step.within(self):
                step.cancel(reason)

    def sf_wait_terminated_elsewhere(self) -> None:
        """Called by a parent terminating this component: if its termination is running in
        another thread (waiting for long work), wait until it is done, the lock released."""
        lock = self._sf_lifecycle
        if (
            lock is not None
            and self._sf_state is State.TERMINATING
            and self._sf_terminating_thread != threading.get_ident()
        ):
            lock.wait_until(lambda: self._sf_state is State.TERMINATED)

    def _sf_terminate_children(self, record: TerminationRecord) -> None:
        """Compound terminates its children here."""

    def sf_detach_now(self) -> None:
        parent = self._sf_parent
        if parent is None or self._sf_process is None:
            return
        detached = getattr(self._sf_process, "on_detach", None)
        if detached is not None:
            detached(self.sf_complete_name())  # its name in the application, for the journal
        parent.sf_remove_child(self)
        self._sf_parent = None
        self._sf_process.adopt(self)
        if self._sf_state is State.STARTED:
            self._sf_watch_liveness()

    def _sf_request(self, request: Callable[[], None]) -> None:
        lock = self._sf_lifecycle
        if lock is None:  # never built: nothing ran, nothing to serialise with
            request()
        else:
            lock.submit(request)

    def sf_fail(self, error: BaseException) -> None:
        """Terminate abnormally because of ``error`` (caller holds the lifecycle lock)."""
        path = getattr(error, "path", None) or self.sf_complete_name()
        self.sf_terminate_now(
            TerminationRecord.abnormal(
                str(error) if isinstance(error, LifecycleError) else describe_exception(error),
                id=path,
                cause=error,
            ),
            notify=True,
        )

    def _sf_attribute_changed(self, name: str, old: Any, new: Any) -> None:
        if name in ("sfLivenessDelay", "sfLivenessFactor"):
            self._sf_liveness_cache = None  # children started later see the new value
        if not self._sf_deploy_called or self._sf_state in _ENDING or self._sf_lifecycle is None:
            return

        def deliver() -> None:
            if self._sf_state in _ENDING:
                return
            try:
                self._sf_call_hook("attribute_changed", self.attribute_changed, name, old, new)
            except LifecycleError as error:
                self.sf_fail(error)

        self._sf_lifecycle.submit(deliver)

    def _sf_forget_child_value(self, old: Any, new: Any) -> None:
        """Compound: an attribute that held a child no longer does."""

    # -- liveness -------------------------------------------------------------------------------
    def sf_ping(self, source: Any = None) -> None:
        """SmartFrog's sfPing: fails for a terminated component, else runs the ping hook."""
        if self._sf_state in _ENDING:
            raise LivenessError(f"{self.sf_complete_name()} is terminated")
        self.ping()

    def sf_liveness_settings(self) -> tuple[float, int]:
        """``ATTRIB sfLivenessDelay``/``sfLivenessFactor``: own attributes, else the parent's
        settings (already known: parents start first), else the process defaults. Cached
        until one of the two attributes changes here."""
        cached = self._sf_liveness_cache
        if cached is not None:
            return cached
        cached = self._sf_liveness_cache = self._sf_compute_liveness_settings()
        return cached

    def _sf_compute_liveness_settings(self) -> tuple[float, int]:
        context = self._sf_context
        parent = self._sf_parent
        inherited = (
            parent.sf_liveness_settings()
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

    def _sf_watch_liveness(self) -> None:
        """Started: the parent (or the process, for a root) begins pinging this component."""
        try:
            delay, factor = self.sf_liveness_settings()
        except LifecycleError as error:
            self.log.error("%s; liveness is off for this component", error)
            return
        if delay <= 0:
            return
        watcher = self._sf_parent if self._sf_parent is not None else self._sf_process
        if watcher is not None:
            watcher.sf_liveness_monitor().watch(self, delay, factor)

    # -- navigation protocol used by sfpy.engine.resolve ----------------------------------------
    def sf_lookup(self, name: Any, first: bool) -> Any:
        context = self._sf_context
        if name in context:
            if first or "sfLocal" not in self._sf_tags.get(name, ()):
                return context[name]
        raise KeyError(name)

    def sf_names(self) -> list[str]:
        return [key for key in self._sf_context if isinstance(key, str)]

    def sf_container(self, for_attrib: bool) -> Any:
        if self._sf_parent is not None:
            return self._sf_parent
        process = self._sf_process
        if for_attrib:
            return process
        # a subtree another daemon placed here: PARENT is its parent component there
        remote = getattr(process, "sf_remote_parent", None)
        return None if remote is None else remote(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.sf_complete_name()} {self._sf_state}>"


class _ComponentLog(logging.LoggerAdapter):
    """Prefixes messages with the component's complete name."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        component: Prim = self.extra["component"]  # type: ignore[index,assignment]
        name = component.sf_complete_name()
        kwargs["extra"] = {**(kwargs.get("extra") or {}), "component": name}  # for log formats
        return f"{name}: {msg}", kwargs


def iter_tree(root: Prim) -> Iterable[Prim]:
    """Every component of a tree, parents before children, in definition order."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        children = getattr(node, "_sf_children", None)
        if children:
            stack.extend(reversed(children))
