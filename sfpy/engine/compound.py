"""SmartFrog's Compound: a component whose eager description attributes are its children.

* Building the tree makes a child of every eager :class:`ComponentDescription` attribute, in
  definition order (``extends DATA``/``extends LAZY`` descriptions stay data); the attribute
  then holds the live child.
* Deploy and start passes run the Compound's own hook first, then its children's, in
  definition order; the whole tree is deployed before anything starts. ``started()`` runs
  after the children's start pass (see :meth:`Prim.started`).
* Termination terminates the children in **reverse** order, each completely, then runs the
  Compound's own ``terminate`` hook.
* A child's termination (normal or abnormal) terminates the Compound with the same record —
  :meth:`Compound.child_terminated` is the hook workflow containers override to do otherwise.
  A detached child no longer counts.

Workflow containers (Sequence, Retry, …) set :attr:`Compound.deploy_children_with_parent` to
False: their eager descriptions are *actions*, checked before deployment but created later
with :meth:`Compound.sf_create_new_child`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sfpy.engine.errors import EngineError, LifecycleError
from sfpy.engine.prim import _ENDING, Prim, State
from sfpy.engine.termination import TerminationRecord
from sfpy.language.model import ComponentDescription

if TYPE_CHECKING:
    from sfpy.engine.lifecycle import LifecycleLock
    from sfpy.engine.liveness import LivenessMonitor
    from sfpy.engine.process import Process


class Compound(Prim):
    """A Prim with children."""

    is_compound = True

    #: False for workflow containers: children are created later with sf_create_new_child.
    deploy_children_with_parent = True
    #: True (Parallel): the start pass starts the children side by side, each in a thread,
    #: so their long work overlaps; False: one after the other, in definition order.
    start_children_concurrently = False

    def __init__(self) -> None:
        super().__init__()
        self._children: list[Prim] = []
        self._liveness: LivenessMonitor | None = None

    # -- hooks ----------------------------------------------------------------------------------
    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        """A child terminated (not quietly, not detached). SmartFrog: terminate with the same
        record. Workflow containers override this (start the next action, retry, …)."""
        self._sf_terminate(record, notify=True)

    # -- API ------------------------------------------------------------------------------------
    def sf_children(self) -> list[Prim]:
        """The live children, in the order they were created."""
        return list(self._children)

    def sf_create_new_child(self, name: str, description: ComponentDescription) -> Prim:
        """Create a child from ``description`` at run time and bring it to this Compound's
        state: deployed if this one is deployed, started if started (SmartFrog's
        sfCreateNewChild). The description is copied; its sfClass (and its subtree's) is
        checked first. On failure the partial child is terminated (its cleanup runs) and
        :class:`~sfpy.engine.errors.LifecycleError` is raised naming the failing component.
        """
        from sfpy.engine.deployer import build, check_description

        lock = self._lifecycle
        process = self._process
        if lock is None or process is None:
            raise LifecycleError(
                "cannot create a child: not deployed", path=self.sf_complete_name()
            )
        with lock:
            if self._state in _ENDING:
                raise LifecycleError(
                    f"cannot create child {name}: terminating", path=self.sf_complete_name()
                )
            existing = self._context.get(name)
            if isinstance(existing, Prim) and existing._state is not State.TERMINATED:
                raise EngineError(f"Name '{name}' already used in {self.sf_complete_name()}")
            path = f"{self.sf_complete_name()}:{name}"
            copy = description.copy()
            copy.eager = True
            copy.parent = self.sf_description
            check_description(copy, path)
            child = build(copy, name, self, process, lock)
            self._context[name] = child
            self._children.append(child)
            try:
                if self._state in (State.DEPLOYED, State.STARTED):
                    child._sf_deploy()
                if self._state is State.STARTED:
                    child._sf_start()
            except LifecycleError as error:
                child._sf_terminate(
                    TerminationRecord.abnormal(
                        str(error), id=error.path or path, cause=error.cause
                    ),
                    notify=False,
                )
                self._sf_remove_child(child)
                if existing is not None and not isinstance(existing, Prim):
                    self._context[name] = existing
                raise
            return child

    # -- internals ------------------------------------------------------------------------------
    @classmethod
    def child_descriptions(
        cls, description: ComponentDescription
    ) -> list[tuple[str, ComponentDescription]]:
        """Every eager description attribute, in order (DATA/LAZY descriptions stay data)."""
        return [
            (key, value)
            for key, value in description.attributes.items()
            if isinstance(value, ComponentDescription) and value.eager and isinstance(key, str)
        ]

    def _sf_build(
        self,
        name: str,
        parent: Compound | None,
        description: ComponentDescription,
        process: Process,
        lifecycle: LifecycleLock,
    ) -> None:
        super()._sf_build(name, parent, description, process, lifecycle)
        if not self.deploy_children_with_parent:
            return
        from sfpy.engine.deployer import build

        context = self._context
        children = self._children
        for key, child_description in type(self).child_descriptions(description):
            child = build(child_description, key, self, process, lifecycle)
            context[key] = child
            children.append(child)

    def _sf_deploy(self) -> None:
        super()._sf_deploy()
        lock = self._lifecycle
        assert lock is not None
        for child in list(self._children):
            if lock._queue:
                lock.drain()
            if self._state is not State.DEPLOYED:
                return
            if child._state is State.CONSTRUCTED and child._parent is self:
                child._sf_deploy()

    def _start_children(self) -> None:
        lock = self._lifecycle
        assert lock is not None
        if self.start_children_concurrently and len(self._children) > 1:
            self._start_children_concurrently(lock)
            return
        for child in list(self._children):
            if lock._queue:
                lock.drain()
            if self._state is not State.STARTED:
                return
            if child._state is State.DEPLOYED and child._parent is self:
                child._sf_start()

    def _start_children_concurrently(self, lock: LifecycleLock) -> None:
        """Start every child in a thread of its own, so their long work overlaps (their
        hooks still run one at a time); return once every start returned. The first failure
        is raised, as a sequential start pass would."""
        children = [c for c in self._children if c._state is State.DEPLOYED and c._parent is self]
        failures: list[LifecycleError] = []
        finished: list[Prim] = []

        def start(child: Prim) -> None:
            try:
                with lock:
                    if self._state is State.STARTED and child._state is State.DEPLOYED:
                        child._sf_start()
            except LifecycleError as error:
                failures.append(error)
            except Exception as error:  # noqa: BLE001 - reported like a failed start
                failures.append(
                    LifecycleError(f"start failed: {error}", path=child.sf_complete_name())
                )
            finally:
                finished.append(child)
                lock.notify()

        for child in children:
            threading.Thread(
                target=start, args=(child,), name=f"sfpy-start-{child.sf_name}", daemon=True
            ).start()
        lock.wait_until(lambda: len(finished) == len(children))
        if failures:
            raise failures[0]

    def _terminate_children(self, record: TerminationRecord) -> None:
        if self._liveness is not None:
            self._liveness.stop()
        for child in reversed(list(self._children)):
            try:
                child._sf_terminate(record, notify=False)
                child._wait_terminated_elsewhere()
            except Exception as error:  # noqa: BLE001 - every child gets its chance
                self.log.error("terminating %s failed: %s", child.sf_complete_name(), error)

    def _sf_forget_child(self, child: Prim) -> None:
        """A child terminated: no longer in the lifecycle (its attribute stays)."""
        if child in self._children:
            self._children.remove(child)
        if self._liveness is not None:
            self._liveness.unwatch(child)

    def _sf_child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        self._sf_forget_child(child)
        if self._state in _ENDING:
            return
        try:
            self._call_hook("child_terminated", self.child_terminated, child, record)
        except LifecycleError as error:
            self._fail(error)

    def _sf_remove_child(self, child: Prim) -> None:
        """Forget a child (detach): no longer in the lifecycle nor an attribute."""
        self._sf_forget_child(child)
        for key, value in list(self._context.items()):
            if value is child:
                del self._context[key]

    def _forget_child_value(self, old: Any, new: Any) -> None:
        if isinstance(old, Prim) and old is not new and old in self._children:
            self._children.remove(old)
            if self._liveness is not None:
                self._liveness.unwatch(old)

    def _liveness_monitor(self) -> LivenessMonitor:
        if self._liveness is None:
            from sfpy.engine.liveness import LivenessMonitor

            assert self._process is not None
            self._liveness = LivenessMonitor(self, self._process.scheduler)
        return self._liveness
