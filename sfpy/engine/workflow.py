"""SmartFrog's workflow components: containers that create their children at run time.

A plain Compound deploys its children with itself and ends when any of them ends. A workflow
container (SmartFrog's ``EventCompoundImpl`` family) is given *actions* — its eager
description attributes, or the single attribute ``action`` — and creates them itself once it
has started, each through deploy and start, deciding what a child's end means:

=============  ==========================================================================
``Sequence``   the actions one after the other; an abnormal end stops it
``Parallel``   all actions together; done when every one ended normally
``Retry``      the action again after an abnormal end, up to ``retry`` times (``count``)
``Repeat``     the action again after a normal end, ``repeat`` times (-1: forever)
``Timeout``    the action must end within ``time`` ms, else abnormal "timeout occurred"
``During``     the action runs for at most ``time`` ms, then everything ends normally
``Delay``      the action starts after ``time`` ms (no action: end normally then)
``Try``        the action, then the attribute named after how it ended (``normal``/…)
``Finally``    the action is run when the Finally terminates
``Container``  all actions together; their ends are logged and nothing else happens
``Run``        the action becomes an application of its own (or a child elsewhere)
``Terminator`` terminate the component ``kill`` with ``type``, then itself (``selftype``)
``DoNothing``  wait ``time`` ms, then terminate with ``terminationType``
=============  ==========================================================================

Times are milliseconds, as in SmartFrog. Children are created in the core's ``started()``
hook (:meth:`Prim.started`), which runs once the container's own start pass is complete: a
child created there is deployed *and* started before ``sf_create_new_child`` returns, so a
failure is the container's to handle (a Try runs its ``abnormal`` branch, a Retry tries again, a Sequence
ends abnormally with the failing component's record). Timers go through the process's one
scheduler (:meth:`Prim.schedule`), so they run serialised with the lifecycle and are
cancelled when the container terminates.

Not provided: SmartFrog's event bus (``sendTo``/``registerWith`` are accepted and ignored),
``RandomSequence``, ``Retract``, ``FireBreak``, ``CounterAction`` and the event components.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

from sfpy.engine.compound import Compound
from sfpy.engine.errors import DeploymentError, EngineError, LifecycleError
from sfpy.engine.prim import Prim, State, describe_exception
from sfpy.engine.termination import TerminationRecord
from sfpy.errors import SfpyError
from sfpy.language.model import ComponentDescription

if TYPE_CHECKING:
    from sfpy.engine.scheduler import Timer

_unnamed = itertools.count()


# ===============================================================================================
# Helpers shared by the workflow components (and sfpy.components.testing).
# ===============================================================================================




def record_from_error(error: LifecycleError, fallback_id: str) -> TerminationRecord:
    """The record of a child that failed in deploy or start (``sf_create_new_child`` raised)."""
    return TerminationRecord.abnormal(str(error), id=error.path or fallback_id, cause=error.cause)


def record_description(record: TerminationRecord) -> ComponentDescription:
    """A termination record as plain data (an attribute value: ``status`` of a TestBlock)."""
    data = ComponentDescription(eager=False)
    data.put("errorType", record.type)
    data.put("description", record.description or "")
    data.put("id", record.id or "")
    return data


# ===============================================================================================
# The base of every workflow container.
# ===============================================================================================
class EventCompound(Compound):
    """SmartFrog's EventCompoundImpl: actions are created at run time, not with the parent.

    The actions are the eager description attributes (in definition order) or, in SmartFrog's
    old notation, the eager attributes of a description called ``actions``. Subclasses use
    :meth:`actions` / :meth:`action` and :meth:`create_child`.
    """
    declared_attributes = frozenset({'action', 'actions'})  # names it reads (misspelling warnings)

    deploy_children_with_parent = False

    @classmethod
    def child_descriptions(cls, description: ComponentDescription) -> list[tuple[str, ComponentDescription]]:
        holder = description.attributes.get("actions")
        if not isinstance(holder, ComponentDescription):
            return super().child_descriptions(description)
        inner = [(key, value) for key, value in holder.attributes.items()
                 if isinstance(key, str) and isinstance(value, ComponentDescription) and value.eager]
        others = [(key, value) for key, value in super().child_descriptions(description)
                  if key != "actions"]
        return inner + others

    def actions(self) -> list[tuple[str, ComponentDescription]]:
        """The (name, description) of every action, in definition order."""
        context = self.sf_context()
        holder = context.get("actions")
        source = holder.attributes if isinstance(holder, ComponentDescription) else context
        return [(key, value) for key, value in source.items()
                if isinstance(key, str) and isinstance(value, ComponentDescription) and value.eager]

    def action(self) -> ComponentDescription:
        """The single action: attribute ``action``, else the first eager description."""
        value = self.optional_action()
        if value is None:
            raise EngineError(f"{self.sf_complete_name()} has no action to run")
        return value

    def optional_action(self) -> ComponentDescription | None:
        """:meth:`action`, or None when there is none (Delay, Finally may have none)."""
        value = self._sf_context.get("action")
        if isinstance(value, ComponentDescription):
            return value
        actions = self.actions()
        return actions[0][1] if actions else None

    def create_child(self, name: str, description: ComponentDescription) -> Prim | TerminationRecord:
        """Create, deploy and start a child; on failure the abnormal record of the failing
        component instead (its cleanup has run)."""
        try:
            return self.sf_create_new_child(name, description)
        except LifecycleError as error:
            self.log.info("could not create %s: %s", name, error)
            return record_from_error(error, f"{self.sf_complete_name()}:{name}")

    def is_workflow_terminating(self) -> bool:
        return self._sf_state in (State.TERMINATING, State.TERMINATED)

    def release_child(self, child: Prim) -> None:
        """Forget a child that ended and whose place is taken by a fresh one (a Repeat's
        finished iteration): its attribute goes, so nothing in the tree keeps it alive.

        The attribute is dropped directly, without an ``attribute_changed`` notice: this is
        the container's own bookkeeping, and a notice per iteration would cost a queued
        request each time (and keep the child alive until it ran)."""
        name = child.sf_name
        if self._sf_context.get(name) is child:
            del self._sf_context[name]


class EventPrim(Prim):
    """SmartFrog's EventPrimImpl (the event bus is not provided: a Prim that does nothing)."""


# ===============================================================================================
# Combinators.
# ===============================================================================================
class Sequence(EventCompound):
    """The actions one after the other, each created when the previous one ended normally.
    The end of the last one (or an empty Sequence) ends the Sequence normally; an abnormal
    end (or a failure to deploy or start a step) ends it with that record."""

    def started(self) -> None:
        self._pending = self.actions()
        self._next()

    def _next(self) -> None:
        while self._pending:
            name, description = self._pending.pop(0)
            created = self.create_child(name, description)
            if isinstance(created, TerminationRecord):
                self.sf_terminate(created)
            return
        self.sf_work_done(TerminationRecord.normal("Sequence finished", id=self.sf_complete_name()), terminate_by_default=True)

    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        if record.is_normal:
            self._next()
        else:
            self.log.info("step %s ended abnormally: stopping the sequence", child.sf_name)
            super().child_terminated(child, record)


class Parallel(EventCompound):
    """All actions together. Normally they are all deployed, then all started
    (``asynchCreateChild false``); with ``asynchCreateChild true`` each is created on its own
    after the Parallel has started (its start does not wait; one lifecycle at a time still).

    Ends normally when the last child ended normally. An abnormal end of a child ends it
    abnormally (``terminateOnAbnormalChildTermination``, default true; when false it is
    logged). A child that fails to deploy or start ends it abnormally (with
    ``asynchCreateChild``, ``terminateOnAbnormalChildDeploy false`` only logs it). Without
    actions it keeps running unless ``terminateOnEmptyDeploy`` is true.
    """
    declared_attributes = frozenset('asynchCreateChild terminateOnAbnormalChildDeploy terminateOnAbnormalChildTermination terminateOnEmptyDeploy'.split())  # what it reads

    #: Container overrides: ends of children never end it.
    ignore_child_ends = False
    start_children_concurrently = True

    def __init__(self) -> None:
        super().__init__()
        self._pending_creations = 0
        self._any_created = False

    def deploy(self) -> None:
        self.asynch = self.sf_boolean("asynchCreateChild", False)
        self.terminate_if_empty = self.sf_boolean("terminateOnEmptyDeploy", False)
        self.terminate_on_abnormal_child = self.sf_boolean("terminateOnAbnormalChildTermination", True)
        self.terminate_on_abnormal_deploy = self.sf_boolean("terminateOnAbnormalChildDeploy", True)
        if not self.terminate_on_abnormal_deploy and not self.asynch:
            self.log.warning("terminateOnAbnormalChildDeploy is only used with asynchCreateChild")

    def start(self) -> None:
        if self.asynch:
            return
        # Synchronous: create (deploy) every action now; the start pass then starts them all.
        for name, description in self.actions():
            try:
                self.sf_create_new_child(name, description)
                self._any_created = True
            except LifecycleError as error:
                raise LifecycleError(
                    f"Failed to start sub-components: {error}", path=error.path, phase="deploy",
                    cause=error.cause,
                ) from None

    def started(self) -> None:
        actions = self.actions()
        if not actions:
            if self.terminate_if_empty and not self.ignore_child_ends:
                self.sf_work_done(TerminationRecord.normal("Parallel component is empty",
                                                      id=self.sf_complete_name()), terminate_by_default=True)
            return
        if self.asynch:
            self._pending_creations = len(actions)
            for name, description in actions:
                threading.Thread(
                    target=self._create_async, args=(name, description),
                    name=f"sfpy-create-{name}", daemon=True,
                ).start()

    def adopt(self, entries: list[Any]) -> bool:
        """After a daemon restart: with ``asynchCreateChild false`` (the default) every
        action was created by the time the Parallel had started, so it is rebuilt with them
        as its children (built only; each is then asked to adopt in turn). With
        ``asynchCreateChild`` their creation may not have finished: refused (cleaned)."""
        from sfpy.engine.deployer import build, check_description

        self.deploy()
        if entries or self.asynch:
            return False
        lock, process = self._sf_lifecycle, self._sf_process
        assert lock is not None and process is not None
        for name, description in self.actions():
            copy = description.copy()
            copy.eager = True
            copy.parent = self.sf_description
            check_description(copy, f"{self.sf_complete_name()}:{name}")
            child = build(copy, name, self, process, lock)
            self._sf_context[name] = child
            self._sf_children.append(child)
            self._any_created = True
        return True

    def _create_async(self, name: str, description: ComponentDescription) -> None:
        """In a thread of its own (so the actions' long work overlaps): create one action."""
        lock = self._sf_lifecycle
        assert lock is not None
        with lock:
            if self.is_workflow_terminating():
                return
            self._create_one(name, description)

    def _create_one(self, name: str, description: ComponentDescription) -> None:
        self._pending_creations -= 1
        created = self.create_child(name, description)
        if isinstance(created, TerminationRecord):
            if self.terminate_on_abnormal_deploy and not self.ignore_child_ends:
                self.sf_terminate(TerminationRecord.abnormal(
                    f"Failure while starting sub-components: {created.description}",
                    id=created.id, cause=created.cause))
                return
            self.log.error("ignoring the failure of %s: %s", name, created.description)
        else:
            self._any_created = True
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.ignore_child_ends or self._pending_creations > 0 or self.sf_children():
            return
        if self.is_workflow_terminating():
            return
        self.sf_work_done(TerminationRecord.normal("Parallel finished", id=self.sf_complete_name()), terminate_by_default=True)

    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        if self.ignore_child_ends:
            self.log.info("child %s ended (%s): %s", child.sf_name, record.type, record.description)
            return
        if not record.is_normal:
            if self.terminate_on_abnormal_child:
                super().child_terminated(child, record)
                return
            self.log.error("ignoring the abnormal end of %s: %s", child.sf_name, record.description)
            if not self.sf_children() and self._pending_creations == 0:
                self.sf_terminate(TerminationRecord.normal(
                    "Terminating normally even though a child terminated abnormally",
                    id=self.sf_complete_name()))
            return
        self._maybe_done()


class Container(Parallel):
    """A Parallel that outlives its children: their ends (normal or not) are logged and the
    child removed; the Container keeps running until it is terminated."""

    ignore_child_ends = True


class Retry(EventCompound):
    """Run the action; after an abnormal end (or a failure to deploy or start it) run a
    fresh copy, up to ``retry`` more times. ``count`` holds the number of the attempt in
    progress (1, 2, …). The children are named ``running_0``, ``running_1``, … The first
    normal end ends the Retry with that record; when the retries are used up the last
    abnormal record is the Retry's."""
    declared_attributes = frozenset({'count', 'retry'})  # names it reads (misspelling warnings)

    def deploy(self) -> None:
        self.action()
        self.retry = self.sf_integer("retry")
        if self.retry < 0:
            raise EngineError("A negative retry value is not supported")
        self.attempt = 0

    def started(self) -> None:
        self._run_attempt()

    def _run_attempt(self) -> None:
        while True:
            name = f"running_{self.attempt}"
            self.sf_replace_attribute("count", self.attempt + 1)
            created = self.create_child(name, self.action())
            if not isinstance(created, TerminationRecord):
                return
            if not self._may_retry(created):
                self.sf_terminate(created)
                return

    def _may_retry(self, record: TerminationRecord) -> bool:
        if self.attempt >= self.retry:
            self.log.info("attempt %d failed; no retries left", self.attempt + 1)
            return False
        self.attempt += 1
        self.log.info("attempt %d failed (%s); retrying (%d/%d)", self.attempt,
                      record.description, self.attempt, self.retry)
        return True

    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        if not record.is_normal and self._may_retry(record):
            self._run_attempt()
            return
        super().child_terminated(child, record)


#: Seconds a Repeat runs iterations back to back in one thread before it lets it go.
REPEAT_SLICE = 0.05


class Repeat(EventCompound):
    """Run the action; after each normal end run a fresh copy, ``repeat`` times in all
    (-1: forever; 0: not at all). An abnormal end (or a failure to deploy or start it) ends
    the Repeat with that record; after the last normal end the Repeat ends normally. The
    children are named ``running_0``, ``running_1``, …

    A Repeat may run for weeks, so it holds only the iteration in progress: a finished
    iteration's attribute is removed before the next one is created (memory stays flat, and
    each iteration costs the same whatever the count). The next iteration is created from
    the Repeat's ``child_terminated`` hook, which runs from the lifecycle queue's loop, so
    the stack does not grow with the count either.

    Iterations that end at once keep that loop busy: the thread that deployed the
    application would run them for ever and ``Process.deploy`` (and so ``sfrun
    --terminate-after``, or a daemon's deploy call) would never return. So after
    :data:`REPEAT_SLICE` seconds of back-to-back iterations the next one is created from a
    timer instead: the current thread is let go and the loop goes on in the application's
    lifecycle worker, one thread hop per slice.
    """
    declared_attributes = frozenset({'count', 'repeat'})  # names it reads (misspelling warnings)

    def deploy(self) -> None:
        self._action = self.action()
        self.repeat = self.sf_integer("repeat")
        if self.repeat < -1:
            raise EngineError(f"repeat must be -1 (forever), 0 or more, not {self.repeat}")
        self.done = 0
        self._slice_began = time.monotonic()

    def started(self) -> None:
        self._slice_began = time.monotonic()
        self._next()

    def _next(self) -> None:
        if self.repeat != -1 and self.done >= self.repeat:
            self.sf_work_done(TerminationRecord.normal(f"Repeat finished after {self.done} runs",
                                                  id=self.sf_complete_name()), terminate_by_default=True)
            return
        created = self.create_child(f"running_{self.done}", self._action)
        if isinstance(created, TerminationRecord):
            self.sf_terminate(created)

    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        if record.is_normal:
            self.done += 1
            self.release_child(child)
            now = time.monotonic()
            if now - self._slice_began < REPEAT_SLICE:
                self._next()
            else:  # let the thread go (see the class's docstring)
                self._slice_began = now
                self.schedule(0, self._next)
        else:
            super().child_terminated(child, record)


class _TimedAction(EventCompound):
    """Run the action (as child ``action``) and end with its record; a timer of ``time`` ms
    (when > 0) started with it calls :meth:`time_up`."""
    declared_attributes = frozenset({'time'})  # names it reads (misspelling warnings)

    def deploy(self) -> None:
        self.action()
        self.time_ms = self.sf_integer("time", 0)
        self.timer: Timer | None = None

    def started(self) -> None:
        if self.time_ms > 0:
            self.timer = self.schedule(self.time_ms / 1000.0, self.time_up)
        created = self.create_child("action", self.action())
        if isinstance(created, TerminationRecord):
            self.sf_terminate(created)

    def time_up(self) -> None:
        """Time ran out before the action ended: by default (Timeout) an abnormal end."""
        self.log.info("timeout after %d ms", self.time_ms)
        self.sf_terminate(TerminationRecord.abnormal("timeout occurred", id=self.sf_complete_name()))

    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        if self.timer is not None:
            self.timer.cancel()
        super().child_terminated(child, record)


class Timeout(_TimedAction):
    """The action must end within ``time`` milliseconds (0: no limit). If it does not, it is
    terminated and the Timeout ends abnormally ("timeout occurred"); otherwise the Timeout
    ends with the action's record."""


class During(_TimedAction):
    """The action runs for at most ``time`` milliseconds (0 or less: no limit); then it is
    terminated and During ends normally. If the action ends first, During ends with its
    record."""

    def time_up(self) -> None:
        self.sf_terminate(TerminationRecord.normal(f"During: {self.time_ms} ms elapsed",
                                                   id=self.sf_complete_name()))


class Delay(EventCompound):
    """Create the (optional) action ``time`` milliseconds after start, as child ``action``,
    and end with its record; without an action end normally after ``time``."""
    declared_attributes = frozenset({'time'})  # names it reads (misspelling warnings)

    def deploy(self) -> None:
        self.time_ms = self.sf_integer("time", 0)

    def started(self) -> None:
        if self.time_ms > 0:
            self.schedule(self.time_ms / 1000.0, self._go)
        else:
            self._go()

    def _go(self) -> None:
        description = self.optional_action()
        if description is None:
            self.sf_work_done(TerminationRecord.normal(f"Delay of {self.time_ms} ms done",
                                                  id=self.sf_complete_name()), terminate_by_default=True)
            return
        created = self.create_child("action", description)
        if isinstance(created, TerminationRecord):
            self.sf_terminate(created)


class Try(EventCompound):
    """Run the action (child ``action``); when it ends, run the description named after the
    end's type (``normal``, ``abnormal``, ``externalReferenceDead``, or any other type a
    component used) as a child of that name, and end with *its* record. A failure to deploy or
    start the action counts as an abnormal end. Without a description for that type the Try
    ends with the action's record."""

    def deploy(self) -> None:
        self.action()
        self._action_child: Prim | None = None

    def started(self) -> None:
        created = self.create_child("action", self.action())
        if isinstance(created, TerminationRecord):
            self._follow_on(created)
        else:
            self._action_child = created

    def _follow_on(self, record: TerminationRecord) -> None:
        branch = self.sf_context().get(record.type)
        if not isinstance(branch, ComponentDescription):
            self.log.info("no %r branch: ending with the action's record", record.type)
            self.sf_terminate(record)
            return
        self.log.info("action ended %s: running %s", record.type, record.type)
        created = self.create_child(record.type, branch)
        if isinstance(created, TerminationRecord):
            self.sf_terminate(TerminationRecord.abnormal(
                f"error in starting follow-on component for '{record.type}' try action: "
                f"{created.description}", id=created.id, cause=created.cause))

    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        if child is self._action_child:
            self._action_child = None
            self._follow_on(record)
        else:
            super().child_terminated(child, record)


class Finally(EventCompound):
    """Run the action when the Finally terminates (for cleanup): a copy of it is deployed and
    started as an application of its own at that moment, then terminated. Its failure is
    logged. Nothing can guarantee it runs when the whole process dies."""

    def deploy(self) -> None:
        self.action()

    def terminate(self, record: TerminationRecord) -> None:
        process = self.sf_process()
        description = self.optional_action()
        if process is None or description is None or not self.sf_is_started:
            return
        name = f"{self.sf_name}_finally_{next(_unnamed)}"
        copy = description.copy()
        copy.eager = True
        try:
            app = process.deploy(copy, name)
        except SfpyError as error:
            self.log.error("the finally action failed: %s", error)
            return
        app.sf_terminate(TerminationRecord.normal(f"finally action of {self.sf_complete_name()} done"))
        if app.wait_terminated(30) is None:
            self.log.warning("the finally action %s did not terminate within 30 s", name)


class Run(EventCompound):
    """Deploy the action and leave it to live on its own, then end normally.

    With ``newComponentParent`` (or ``parent``), a LAZY link to a Compound, the action
    becomes that Compound's child named ``newComponentName`` (or ``asName``, required then);
    otherwise it becomes an application of the process, named ``newComponentName`` if given.
    A failure to deploy or start it ends the Run abnormally.
    """
    declared_attributes = frozenset('asName newComponentName newComponentParent parent'.split())  # what it reads

    def deploy(self) -> None:
        self.action()
        parent = self.sf_resolve("newComponentParent", None)
        if parent is None:
            parent = self.sf_resolve("parent", None)
        name = self.sf_resolve("newComponentName", None)
        if name is None:
            name = self.sf_resolve("asName", None)
        if parent is not None and not isinstance(parent, Compound):
            raise EngineError(f"newComponentParent of {self.sf_complete_name()} is not a compound: {parent!r}")
        if name is not None and not isinstance(name, str):
            raise EngineError(f"newComponentName of {self.sf_complete_name()} must be a string")
        if parent is not None and name is None:
            raise EngineError(f"{self.sf_complete_name()} needs a newComponentName when it names "
                              "a newComponentParent")
        self.new_parent: Compound | None = parent
        self.new_name: str | None = name

    def started(self) -> None:
        description = self.action()
        try:
            if self.new_parent is not None:
                self.new_parent.sf_create_new_child(self.new_name or "action", description)
            else:
                process = self.sf_process()
                assert process is not None
                name = self.new_name or f"unnamed_{int(time.time() * 1000)}_{next(_unnamed)}"
                copy = description.copy()
                copy.eager = True
                process.deploy(copy, name)
        except DeploymentError as error:
            self.sf_terminate(TerminationRecord.abnormal(
                f"failed to deploy child: {error.record.description}", id=error.record.id))
            return
        except SfpyError as error:
            self.sf_terminate(TerminationRecord.abnormal(
                f"failed to deploy child: {error}", id=getattr(error, "path", None) or self.sf_complete_name()))
            return
        self.sf_work_done(TerminationRecord.normal(f"{self.sf_complete_name()} deployed its action"), terminate_by_default=True)


class DetachingCompound(Compound):
    """A Compound that, once it and its children have started, may detach itself from its
    parent (``detachUpwards``), its children from itself (``detachDownwards``; each becomes
    an application of the process, named by its ``sfProcessComponentName`` if it has one)
    and then terminate (``autoDestruct``, after detaching its children). Defaults: all true.
    Beware: one that terminates without detaching itself takes its parent down with it."""
    declared_attributes = frozenset('autoDestruct detachDownwards detachUpwards'.split())  # what it reads

    def deploy(self) -> None:
        self.detach_downwards = self.sf_boolean("detachDownwards", True)
        self.detach_upwards = self.sf_boolean("detachUpwards", True)
        self.auto_destruct = self.sf_boolean("autoDestruct", True)

    def started(self) -> None:
        if self.detach_upwards and self.sf_parent() is not None:
            self.sf_detach()
        if self.detach_downwards:
            for child in self.sf_children():
                child.sf_detach()
            if self.auto_destruct:
                self.sf_terminate(TerminationRecord.normal(
                    f"{self.sf_complete_name()} detached its children", id=self.sf_complete_name()))


# ===============================================================================================
# Small workflow components.
# ===============================================================================================
class Terminator(EventPrim):
    """On start, terminate the component ``kill`` (a LAZY link; optional) with a record of
    ``type`` and ``description`` (detaching it first when ``detachFirst``), then terminate
    itself with ``selftype``. If ``kill`` cannot be resolved or terminated, the Terminator
    ends abnormally with the reason."""
    declared_attributes = frozenset('description detachFirst kill selftype type'.split())  # what it reads

    def deploy(self) -> None:
        self.kill_type = self.sf_string("type", "normal")
        self.self_type = self.sf_string("selftype", "normal")
        self.description = self.sf_string("description", "terminator action")
        self.detach_first = self.sf_boolean("detachFirst", False)

    def start(self) -> None:
        me = self.sf_complete_name()
        record = TerminationRecord(self.self_type, self.description, me)
        if "kill" in self.sf_context():
            try:
                target = self.sf_resolve("kill")
                if not isinstance(target, Prim):
                    raise EngineError(f"kill does not link to a component: {target!r}")
                kill_record = TerminationRecord(self.kill_type, self.description, me)
                self.log.info("terminating %s (%s)", target.sf_complete_name(), self.kill_type)
                if self.detach_first:
                    target.sf_detach_and_terminate(kill_record)
                else:
                    target.sf_terminate(kill_record)
            except Exception as error:  # noqa: BLE001 - any failure is this component's end
                record = TerminationRecord.abnormal(describe_exception(error), me, cause=error)
        self.sf_terminate(record)


class DoNothing(EventPrim):
    """Wait ``time`` milliseconds after start, then terminate with a record of type
    ``terminationType`` (``"none"``: never). ``message``, if given, is logged at start."""
    declared_attributes = frozenset('message terminationType time'.split())  # what it reads

    def deploy(self) -> None:
        self.time_ms = self.sf_integer("time", 10000)
        self.termination_type = self.sf_string("terminationType", "normal")

    def start(self) -> None:
        message = self.sf_resolve("message", None)
        if message is not None:
            self.log.info("%s", message)
        if self.termination_type == "none":
            return
        if self.time_ms > 0:
            self.schedule(self.time_ms / 1000.0, self._end)
        else:
            self._end()

    def _end(self) -> None:
        self.sf_terminate(TerminationRecord(self.termination_type, self.sf_complete_name(),
                                            self.sf_complete_name()))


__all__ = [
    "Container",
    "Delay",
    "DetachingCompound",
    "DoNothing",
    "During",
    "EventCompound",
    "EventPrim",
    "Finally",
    "Parallel",
    "Repeat",
    "Retry",
    "Run",
    "Sequence",
    "Terminator",
    "Timeout",
    "Try",
    "record_description",
]
