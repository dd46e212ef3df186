"""SmartFrog's Compound: a component whose eager description attributes are its children.

* Building the tree makes a child of every eager :class:`ComponentDescription` attribute, in
  definition order (``extends DATA``/``extends LAZY`` descriptions stay data); the attribute
  then holds the live child.
* Deploy and start passes run the Compound's own hook first, then its children's, in
  definition order; the whole tree is deployed before anything starts. ``started()`` runs
  after the children's start pass (see :meth:`Prim.started`).
* Termination terminates the children in **reverse** order, each completely, then runs the
  Compound's own ``terminate`` hook. Children placed on other hosts (``sfProcessHost``) have
  their termination *started* together first, so their cleanups on their hosts overlap;
  ``sfSyncTerminate true`` keeps them strictly one after the other too.
* A child's termination (normal or abnormal) terminates the Compound with the same record —
  :meth:`Compound.child_terminated` is the hook workflow containers override to do otherwise.
  A detached child no longer counts.

Workflow containers (Sequence, Retry, …) set :attr:`Compound.deploy_children_with_parent` to
False: their eager descriptions are *actions*, checked before deployment but created later
with :meth:`Compound.sf_create_new_child`.
"""

from __future__ import annotations

import threading
from functools import partial
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
        self._sf_children: list[Prim] = []
        self._sf_liveness: LivenessMonitor | None = None

    # -- hooks ----------------------------------------------------------------------------------
    def child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        """A child terminated (not quietly, not detached). SmartFrog: terminate with the same
        record. Workflow containers override this (start the next action, retry, …)."""
        self.sf_terminate_now(record, notify=True)

    # -- API ------------------------------------------------------------------------------------
    def sf_children(self) -> list[Prim]:
        """The live children, in the order they were created."""
        return list(self._sf_children)

    def sf_create_new_child(self, name: str, description: ComponentDescription) -> Prim:
        """Create a child from ``description`` at run time and bring it to this Compound's
        state: deployed if this one is deployed, started if started (SmartFrog's
        sfCreateNewChild). The description is copied; its sfClass (and its subtree's) is
        checked first. On failure the partial child is terminated (its cleanup runs) and
        :class:`~sfpy.engine.errors.LifecycleError` is raised naming the failing component.
        """
        from sfpy.engine.deployer import build, check_description

        lock = self._sf_lifecycle
        process = self._sf_process
        if lock is None or process is None:
            raise LifecycleError(
                "cannot create a child: not deployed", path=self.sf_complete_name()
            )
        with lock:
            if self._sf_state in _ENDING:
                raise LifecycleError(
                    f"cannot create child {name}: terminating", path=self.sf_complete_name()
                )
            existing = self._sf_context.get(name)
            if isinstance(existing, Prim) and existing.state is not State.TERMINATED:
                raise EngineError(f"Name '{name}' already used in {self.sf_complete_name()}")
            path = f"{self.sf_complete_name()}:{name}"
            copy = description.copy()
            copy.eager = True
            copy.parent = self.sf_description
            check_description(copy, path)
            child = build(copy, name, self, process, lock)
            self._sf_context[name] = child
            self._sf_children.append(child)
            try:
                if self._sf_state in (State.DEPLOYED, State.STARTED):
                    child.sf_deploy_pass()
                if self._sf_state is State.STARTED:
                    child.sf_start_pass()
            except LifecycleError as error:
                child.sf_terminate_now(
                    TerminationRecord.abnormal(
                        str(error), id=error.path or path, cause=error.cause
                    ),
                    notify=False,
                )
                self.sf_remove_child(child)
                if existing is not None and not isinstance(existing, Prim):
                    self._sf_context[name] = existing
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

    def sf_build(
        self,
        name: str,
        parent: Compound | None,
        description: ComponentDescription,
        process: Process,
        lifecycle: LifecycleLock,
    ) -> None:
        super().sf_build(name, parent, description, process, lifecycle)
        if not self.deploy_children_with_parent:
            return
        from sfpy.engine.deployer import build

        context = self._sf_context
        children = self._sf_children
        for key, child_description in type(self).child_descriptions(description):
            child = build(child_description, key, self, process, lifecycle)
            context[key] = child
            children.append(child)

    def sf_deploy_pass(self) -> None:
        super().sf_deploy_pass()
        lock = self._sf_lifecycle
        assert lock is not None
        for child in list(self._sf_children):
            if lock.pending():
                lock.drain()
            if self._sf_state is not State.DEPLOYED:
                return
            if child.state is State.CONSTRUCTED and child.sf_parent() is self:
                child.sf_deploy_pass()

    def _sf_start_children(self) -> None:
        lock = self._sf_lifecycle
        assert lock is not None
        if self.start_children_concurrently and len(self._sf_children) > 1:
            self._sf_start_children_concurrently(lock)
            return
        for child in list(self._sf_children):
            if lock.pending():
                lock.drain()
            if self._sf_state is not State.STARTED:
                return
            if child.state is State.DEPLOYED and child.sf_parent() is self:
                child.sf_start_pass()

    def _sf_start_children_concurrently(self, lock: LifecycleLock) -> None:
        """Start every child in a thread of its own, so their long work overlaps; return once
        every start returned. The start hooks still *begin* in definition order (child N+1's
        thread is started once child N's hook returned or is waiting for long work), and
        never run at the same time. The first failure is raised, as a sequential start pass
        would."""
        children = [
            c for c in self._sf_children if c.state is State.DEPLOYED and c.sf_parent() is self
        ]
        failures: list[LifecycleError] = []
        finished: set[int] = set()

        def start(index: int, child: Prim, began: list[int]) -> None:
            try:
                with lock:
                    began.append(threading.get_ident())
                    if self._sf_state is State.STARTED and child.state is State.DEPLOYED:
                        child.sf_start_pass()
            except LifecycleError as error:
                failures.append(error)
            except Exception as error:  # noqa: BLE001 - reported like a failed start
                failures.append(
                    LifecycleError(f"start failed: {error}", path=child.sf_complete_name())
                )
            finally:
                finished.add(index)
                lock.notify()

        for index, child in enumerate(children):
            began: list[int] = []
            threading.Thread(
                target=start, args=(index, child, began), name=f"sfpy-start-{child.sf_name}",
                daemon=True,
            ).start()
            lock.wait_until(partial(_yielded, lock, index, finished, began))
        lock.wait_until(lambda: len(finished) == len(children))
        if failures:
            raise failures[0]

    def _sf_terminate_children(self, record: TerminationRecord) -> None:
        if self._sf_liveness is not None:
            self._sf_liveness.stop()
        children = list(self._sf_children)
        if not self._sf_sync_terminate():
            self._sf_begin_remote_terminations(children, record)
        for child in reversed(children):
            try:
                child.sf_terminate_now(record, notify=False)
                child.sf_wait_terminated_elsewhere()
            except Exception as error:  # noqa: BLE001 - every child gets its chance
                self.log.error("terminating %s failed: %s", child.sf_complete_name(), error)

    def _sf_sync_terminate(self) -> bool:
        """SmartFrog's ``sfSyncTerminate``: true terminates every child completely before the
        next, placed ones included."""
        try:
            return self.sf_resolve("sfSyncTerminate", False) is True
        except EngineError:
            return False

    def _sf_begin_remote_terminations(
        self, children: list[Prim], record: TerminationRecord
    ) -> None:
        """Start the termination of every child placed on another host, in reverse order,
        without waiting: each remote daemon runs its part's cleanup while this Compound goes
        on with the others. The loop that follows terminates the children in reverse order
        as always; a placed child's terminate hook then only follows its started operation
        (lock released). Local children are not touched here: their order stays."""
        from sfpy.engine.placement import RemoteSubtree

        for child in reversed(children):
            if not isinstance(child, RemoteSubtree) or child.sf_parent() is not self:
                continue
            try:
                child.sf_begin_terminate(record)
            except Exception as error:  # noqa: BLE001 - its terminate hook tries again
                self.log.error("terminating %s failed: %s", child.sf_complete_name(), error)

    def sf_forget_child(self, child: Prim) -> None:
        """A child terminated: no longer in the lifecycle (its attribute stays)."""
        if child in self._sf_children:
            self._sf_children.remove(child)
        if self._sf_liveness is not None:
            self._sf_liveness.unwatch(child)

    def sf_child_terminated(self, child: Prim, record: TerminationRecord) -> None:
        self.sf_forget_child(child)
        if self._sf_state in _ENDING:
            return
        try:
            self._sf_call_hook("child_terminated", self.child_terminated, child, record)
        except LifecycleError as error:
            self.sf_fail(error)

    def sf_remove_child(self, child: Prim) -> None:
        """Forget a child (detach): no longer in the lifecycle nor an attribute."""
        self.sf_forget_child(child)
        for key, value in list(self._sf_context.items()):
            if value is child:
                del self._sf_context[key]

    def _sf_forget_child_value(self, old: Any, new: Any) -> None:
        if isinstance(old, Prim) and old is not new and old in self._sf_children:
            self._sf_children.remove(old)
            if self._sf_liveness is not None:
                self._sf_liveness.unwatch(old)

    def sf_liveness_monitor(self) -> LivenessMonitor:
        if self._sf_liveness is None:
            from sfpy.engine.liveness import LivenessMonitor

            assert self._sf_process is not None
            self._sf_liveness = LivenessMonitor(self, self._sf_process.scheduler)
        return self._sf_liveness


def _yielded(lock: LifecycleLock, index: int, finished: set[int], began: list[int]) -> bool:
    """Has the start of child ``index`` returned, or let the lock go to wait for its work?"""
    return index in finished or (bool(began) and not lock.held_by(began[0]))
