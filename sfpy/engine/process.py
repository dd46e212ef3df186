"""The components of one OS process: SmartFrog's ProcessCompound, minus any transport.

A :class:`Process` holds the applications deployed here (by name, as SmartFrog's
ProcessCompound holds them as attributes), the defaults that ``ATTRIB`` lookups reach when
nothing closer defines them (``sfLivenessDelay 15; sfLivenessFactor 2`` as in SmartFrog's
processcompound.sf), the one :class:`~sfpy.engine.scheduler.Scheduler`, and the observers
told of every state change. ``sfrun`` makes one; the daemons build on it.

    process = Process()
    process.add_observer(lambda component, state: print(component.sf_complete_name(), state))
    app = process.deploy(load("site.sf"))          # build, deploy all, start all
    record = app.wait_terminated()
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sfpy.engine.deployer import build, check_description
from sfpy.engine.errors import DeploymentError, EngineError, LifecycleError, ResolutionError
from sfpy.engine.lifecycle import LifecycleLock
from sfpy.engine.liveness import LivenessMonitor
from sfpy.engine.prim import _ENDING, HOST_NAME, Prim, State, iter_tree
from sfpy.engine.scheduler import Scheduler
from sfpy.engine.steps import Activity
from sfpy.engine.termination import TerminationRecord
from sfpy.language.errors import DescriptionError
from sfpy.language.model import ComponentDescription, Long

log = logging.getLogger("sfpy.engine")

Observer = Callable[[Prim, State], None]

#: SmartFrog's processcompound.sf defaults that matter to components.
DEFAULT_ATTRIBUTES: dict[str, Any] = {"sfLivenessDelay": 15, "sfLivenessFactor": 2}
#: The cleanup bound (seconds) of a terminate hook's commands, unless configured.
DEFAULT_TERMINATE_TIMEOUT = 60.0


class AdoptionRefused(EngineError):
    """An application cannot be re-adopted after a restart (why: the message)."""


class Process:
    """Applications of this process, their scheduler, defaults and observers."""

    def __init__(
        self,
        name: str = "sfRunProcess",
        *,
        attributes: dict[str, Any] | None = None,
        properties: dict[str, str] | None = None,
        terminate_timeout: float = DEFAULT_TERMINATE_TIMEOUT,
        journal: Any = None,
        host_layer: Any = None,
        placement: Any = None,
    ) -> None:
        self.name = name
        #: Seconds a component's terminate hook's commands may take in all, unless the
        #: component's ``terminateTimeout`` says otherwise (the cleanup bound).
        self.terminate_timeout = terminate_timeout
        #: Where side effects are recorded before they are made (:mod:`sfpy.host.journal`);
        #: None: not recorded.
        self.journal = journal
        #: The host layer components act through (:mod:`sfpy.host`); None: the local host.
        self.host_layer = host_layer
        #: How subtrees whose ``sfProcessHost`` names another host reach that host's daemon
        #: (a :class:`sfpy.engine.placement.Connector`, given by the daemon); None: no
        #: daemons (``sfrun``), every subtree is deployed here.
        self.placement = placement
        self.host = HOST_NAME
        #: Told (by the component) the complete name a subtree had in its application just
        #: before it is detached (the daemon notes it: a restart does not rebuild it there).
        self.on_detach: Callable[[str], None] | None = None
        #: For a daemon's part of an application held elsewhere: the parent component (on
        #: the parent's host) of a root placed here, by the root's complete name.
        self.remote_parent: Callable[[str], Any] | None = None
        self.attributes: dict[str, Any] = {
            "sfProcessName": name,
            **DEFAULT_ATTRIBUTES,
            **(attributes or {}),
        }
        #: PROPERTY values of this process, over the language's system properties.
        self.properties: dict[str, str] = {
            "org.smartfrog.sfcore.processcompound.sfProcessName": name,
            **(properties or {}),
        }
        self.scheduler = Scheduler(f"sfpy-scheduler-{name}")
        self.started_at = time.time()
        #: (component path, message) of every terminate hook that raised.
        self.cleanup_failures: list[tuple[str, str]] = []
        self._applications: dict[str, Prim | None] = {}
        self._observers: list[Observer] = []
        self._activity_observers: list[Callable[[Activity, bool], None]] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._sf_liveness: LivenessMonitor | None = None
        self._unnamed = itertools.count()
        self._activities: dict[int, Activity] = {}

    # -- observers ------------------------------------------------------------------------------
    def add_observer(self, observer: Observer) -> None:
        """``observer(component, state)`` is called on every state change, in the thread that
        makes it (while the application's lifecycle lock is held: be quick)."""
        with self._lock:
            self._observers = [*self._observers, observer]

    def remove_observer(self, observer: Observer) -> None:
        with self._lock:
            self._observers = [o for o in self._observers if o is not observer]

    # -- applications ---------------------------------------------------------------------------
    def check(self, description: ComponentDescription, name: str = "sfConfig") -> None:
        """Raise :class:`~sfpy.engine.errors.ComponentClassError` unless every component of
        the description names a registered sfClass. Nothing is created."""
        check_description(description, name)

    def deploy(
        self,
        description: ComponentDescription,
        name: str = "sfConfig",
        *,
        parse_time: float | None = None,
    ) -> Prim:
        """Build the whole tree, deploy every component, start every component.

        Raises :class:`~sfpy.engine.errors.ComponentClassError` (nothing created) for a
        missing or unknown sfClass, :class:`~sfpy.engine.errors.DeploymentError` (after the
        application was terminated, each deployed component's cleanup having run) when a hook
        raised or the application terminated abnormally before it was fully started.
        Returns the root component (which may have already terminated normally).
        """
        check_description(description, name)
        with self._lock:
            if name in self._applications:
                raise EngineError(f"Name '{name}' already used in process {self.name}")
            self._applications[name] = None  # reserved
        lock = LifecycleLock(name)
        begun = time.perf_counter()
        with lock:
            try:
                root = build(description, name, None, self, lock)
            except BaseException:
                with self._lock:
                    self._applications.pop(name, None)
                raise
            with self._lock:
                self._applications[name] = root
            if parse_time is not None:
                root.sf_set_runtime_attribute("sfParseTime", Long(round(parse_time * 1000)))
            try:
                root.sf_deploy_pass()
                deployed = time.perf_counter()
                root.sf_start_pass()
                started = time.perf_counter()
            except LifecycleError as error:
                record = TerminationRecord.abnormal(str(error), id=error.path, cause=error.cause)
                root.sf_terminate_now(record, notify=True)
                root.sf_wait_terminated_elsewhere()  # cleanup done before we report it
                lock.drain()
                raise DeploymentError(root.termination_record or record) from None
            fully_started = root.state not in _ENDING
            if not fully_started:
                root.sf_wait_terminated_elsewhere()
            if fully_started:
                root.sf_set_runtime_attribute("sfDeployTime", Long(round((deployed - begun) * 1000)))
                root.sf_set_runtime_attribute("sfStartTime", Long(round((started - deployed) * 1000)))
            lock.drain()
        final = root.termination_record
        # An application that ended after it was fully started (a command that exits at once,
        # say) was deployed: its end is reported by its record, not as a failed deployment.
        if final is not None and not final.is_normal and not fully_started:
            raise DeploymentError(final)
        return root

    def deploy_subtree(self, description: ComponentDescription, name: str) -> Prim:
        """Build ``description`` as the root ``name`` and run its deploy pass only: a subtree
        that a parent daemon placed here (``sfProcessHost``), whose start pass comes when the
        parent's start pass reaches it (:meth:`start_deployed`), so that nothing starts
        anywhere before everything is deployed everywhere. ``name`` is the subtree's complete
        name in its application (``web:b``), so its components have the same names here as
        there. Raises as :meth:`deploy` does, after the subtree was cleaned up."""
        check_description(description, name)
        with self._lock:
            if name in self._applications:
                raise EngineError(f"Name '{name}' already used in process {self.name}")
            self._applications[name] = None  # reserved
        lock = LifecycleLock(name)
        with lock:
            try:
                root = build(description, name, None, self, lock)
            except BaseException:
                with self._lock:
                    self._applications.pop(name, None)
                raise
            with self._lock:
                self._applications[name] = root
            self._pass(root, root.sf_deploy_pass)
        return self._outcome(root, root.sf_is_deployed)

    def start_deployed(self, root: Prim) -> None:
        """The start pass of a root :meth:`deploy_subtree` deployed. Raises
        :class:`~sfpy.engine.errors.DeploymentError` (after cleanup) when it fails."""
        lock = root.sf_lifecycle
        assert lock is not None
        with lock:
            if root.state is State.DEPLOYED:
                self._pass(root, root.sf_start_pass)
        self._outcome(root, root.sf_is_started)

    def readopt(
        self, roots: list[tuple[ComponentDescription, str]], entries: list[Any]
    ) -> list[Prim]:
        """After a daemon restart: rebuild each root ``(description, name)`` without running
        a deploy or start hook and ask every component to adopt what it made (its ``adopt``
        hook with the open journal ``entries`` it owns; docs/engine.md). All or nothing:
        when every component adopts and every entry has an owner among them, every
        component is marked STARTED (and watched) and the roots are returned; otherwise
        :class:`AdoptionRefused` says why, and nothing is left registered here (the caller
        cleans through the journal)."""
        by_owner: dict[str, list[Any]] = {}
        for entry in entries:
            by_owner.setdefault(entry.owner, []).append(entry)
        built: list[tuple[Prim, LifecycleLock]] = []
        try:
            for description, name in roots:
                check_description(description, name)
                with self._lock:
                    if name in self._applications:
                        raise AdoptionRefused(f"{name} is already in process {self.name}")
                    self._applications[name] = None  # reserved
                lock = LifecycleLock(name)
                with lock:
                    try:
                        root = build(description, name, None, self, lock)
                    except BaseException:
                        with self._lock:
                            self._applications.pop(name, None)
                        raise
                    with self._lock:
                        self._applications[name] = root
                    built.append((root, lock))
                    for component in iter_tree(root):
                        path = component.sf_complete_name()
                        if not component.sf_adopt(by_owner.pop(path, [])):
                            raise AdoptionRefused(f"{path} cannot take back what it made")
            if by_owner:
                owner = next(iter(sorted(by_owner)))
                raise AdoptionRefused(
                    f"{owner} made something that is still there, and is not part of the "
                    "application rebuilt from its description"
                )
        except (EngineError, DescriptionError) as error:
            self._forget(root for root, _ in built)
            if isinstance(error, AdoptionRefused):
                raise
            raise AdoptionRefused(str(error)) from None
        except BaseException:
            self._forget(root for root, _ in built)
            raise
        for root, lock in built:
            with lock:
                for component in iter_tree(root):
                    component.sf_mark_adopted()
            lock.drain()
        return [root for root, _ in built]

    def _forget(self, roots: Iterable[Prim]) -> None:
        """Drop rebuilt roots that were not adopted (no hook runs: nothing was started)."""
        with self._changed:
            for root in roots:
                name = root.sf_name
                if self._applications.get(name) is root:
                    del self._applications[name]
            self._changed.notify_all()

    def _pass(self, root: Prim, run: Callable[[], None]) -> None:
        """Run one pass over ``root`` (its lock held); on failure terminate it and wait
        for its cleanup before raising DeploymentError."""
        lock = root.sf_lifecycle
        assert lock is not None
        try:
            run()
        except LifecycleError as error:
            record = TerminationRecord.abnormal(str(error), id=error.path, cause=error.cause)
            root.sf_terminate_now(record, notify=True)
            root.sf_wait_terminated_elsewhere()
            lock.drain()
            raise DeploymentError(root.termination_record or record) from None
        lock.drain()
        if root.state in _ENDING:
            root.sf_wait_terminated_elsewhere()
            lock.drain()

    @staticmethod
    def _outcome(root: Prim, reached: bool) -> Prim:
        final = root.termination_record
        if final is not None and not final.is_normal and not reached:
            raise DeploymentError(final)
        return root

    def applications(self) -> dict[str, Prim]:
        """The running applications by name."""
        with self._lock:
            return {name: app for name, app in self._applications.items() if app is not None}

    def application(self, name: str) -> Prim | None:
        with self._lock:
            return self._applications.get(name)

    def terminate_all(self, record: TerminationRecord | None = None) -> None:
        """Ask every application to terminate (returns at once)."""
        record = record or TerminationRecord.normal(f"process {self.name} terminating")
        for app in self.applications().values():
            app.sf_terminate(record)

    def wait_empty(self, timeout: float | None = None) -> bool:
        """Block until no application is left; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while any(app is not None for app in self._applications.values()):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no application has lifecycle work queued or running: no lifecycle lock
        held, no request queued, no hook waiting for long work. True when idle, False after ``timeout`` seconds.

        For checking that something did *not* happen (a parent that must not terminate, a
        timer that must not fire again) without sleeping a fixed time: once idle, whatever the
        engine was going to do about past events is done. It polls; not for hot paths, and
        never from inside a hook (the hook's own lock is held until it returns)."""
        deadline = time.monotonic() + timeout
        while True:
            apps = list(self.applications().values())
            if any(app.sf_lifecycle is not None and app.sf_lifecycle.held() for app in apps):
                raise EngineError("wait_idle inside a hook would wait for the hook itself")
            if self.idle():
                time.sleep(0.005)  # a request in flight between two applications
                if self.idle():
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    def shutdown(
        self, timeout: float | None = 30.0, record: TerminationRecord | None = None
    ) -> bool:
        """Terminate every application (with ``record``), wait for them, stop the scheduler.

        False when some application did not finish terminating within ``timeout``."""
        self.terminate_all(record)
        done = self.wait_empty(timeout)
        self.scheduler.stop()
        return done

    def activities(self) -> list[Activity]:
        """Long work in progress (a hook waiting for a command, a boot…), oldest first."""
        with self._lock:
            return sorted(self._activities.values(), key=lambda activity: activity.since)

    def activity_changed(self, activity: Activity, begun: bool) -> None:
        """A hook step began (``begun``) or ended waiting for long work."""
        with self._lock:
            if begun:
                self._activities[id(activity)] = activity
            else:
                self._activities.pop(id(activity), None)
        for observer in self._activity_observers:
            try:
                observer(activity, begun)
            except Exception:  # noqa: BLE001 - an observer must not break the lifecycle
                log.exception("activity observer failed")

    def add_activity_observer(self, observer: Callable[[Activity, bool], None]) -> None:
        """``observer(activity, begun)`` when long work begins and ends (from the thread
        doing it, without the lifecycle lock: be quick)."""
        with self._lock:
            self._activity_observers = [*self._activity_observers, observer]

    def idle(self) -> bool:
        """No lifecycle request queued or running and no hook in progress, in any
        application of this process."""
        with self._lock:
            apps = [app for app in self._applications.values() if app is not None]
        return all(app.sf_lifecycle is None or app.sf_lifecycle.idle() for app in apps)

    def resolve_host(self, name: str | None) -> Any:
        """``HOST name``: another host's root process (a
        :class:`~sfpy.engine.placement.RemoteRootProcess`). Needs the daemons."""
        if self.placement is not None and name:
            from sfpy.engine.placement import remote_host

            return remote_host(self.placement, name)
        raise ResolutionError(
            f"HOST {name}: references to other hosts need sfpy daemons; "
            f"this process ({self.name}) runs without one"
        )

    def sf_complete_name(self) -> str:
        return f"process {self.name}"

    def sf_remote_parent(self, root: Prim) -> Any:
        """What ``PARENT`` of the root ``root`` is when it is a subtree placed here by
        another daemon (its parent component there); None otherwise."""
        find = self.remote_parent
        return None if find is None else find(root.sf_complete_name())

    # -- resolution protocol (PROCESS, and ATTRIB beyond an application root) -----------------
    def sf_lookup(self, name: Any, first: bool) -> Any:
        if name in self.attributes:
            return self.attributes[name]
        app = self._applications.get(name)
        if app is not None:
            return app
        raise KeyError(name)

    def sf_names(self) -> list[str]:
        return [*self.attributes, *(n for n, a in self._applications.items() if a is not None)]

    def sf_container(self, for_attrib: bool) -> None:
        return None

    def sf_root(self) -> Process:
        return self

    # -- engine callbacks -----------------------------------------------------------------------
    def state_changed(self, component: Prim, state: State) -> None:
        for observer in self._observers:
            try:
                observer(component, state)
            except Exception:  # noqa: BLE001 - an observer must not break the lifecycle
                log.exception("state observer failed")

    def application_terminated(self, root: Prim, record: TerminationRecord) -> None:
        if self._sf_liveness is not None:
            self._sf_liveness.unwatch(root)
        with self._changed:
            if self._applications.get(root.sf_name) is root:
                del self._applications[root.sf_name]
            self._changed.notify_all()

    def adopt(self, component: Prim) -> None:
        """A detached subtree becomes an application (SmartFrog registers it in the
        ProcessCompound under sfProcessComponentName, or ``unnamed_<millis>_<n>``)."""
        wanted = component.sf_context().get("sfProcessComponentName")
        with self._changed:
            if not isinstance(wanted, str) or wanted in self._applications:
                wanted = f"unnamed_{int(time.time() * 1000)}_{next(self._unnamed)}"
            component.sf_adopted_as(wanted)
            self._applications[wanted] = component
            self._changed.notify_all()

    def cleanup_failed(self, component: Prim, error: BaseException) -> None:
        with self._lock:
            self.cleanup_failures.append((component.sf_complete_name(), str(error)))

    def sf_liveness_monitor(self) -> LivenessMonitor:
        with self._lock:
            if self._sf_liveness is None:
                self._sf_liveness = LivenessMonitor(self, self.scheduler)
            return self._sf_liveness
