"""The contracts between the engine's parts, named.

A component tree is driven through three small protocols, so that a Compound, the process
(SmartFrog's ProcessCompound), the liveness monitor and the daemons' remote handles implement
one thing each, and nothing reaches into another part's private members:

:class:`LifecycleChild`
    what a parent (a Compound, or the process for an application root) drives in a child:
    the deploy and start passes, termination, pings. :class:`~sfpy.engine.prim.Prim`
    implements it; a handle to a component on another host will too.
:class:`ComponentParent`
    what a child asks of its parent: to be told of its end, to be forgotten or removed, the
    liveness monitor that pings it. :class:`~sfpy.engine.compound.Compound` implements it.
:class:`ProcessServices`
    what a component asks of its process: state-change and activity notices, the scheduler,
    the cleanup bound, the journal and the host layer, adoption of detached subtrees.
    :class:`~sfpy.engine.process.Process` implements it.
:class:`Navigable`
    what LAZY references walk at run time (:mod:`sfpy.engine.resolve`): components and the
    process alike.
:class:`Adoptable`
    what a daemon restarted after ``kill -9`` asks of each rebuilt component: the ``adopt``
    hook (take back what it made, or refuse, and the application is cleaned).

The members these name (``sf_*``) are the engine's. Component authors write *hooks* (deploy,
start, started, terminate, ping, attribute_changed, child_terminated, adopt) and call the
public API;
a component class that defines one of the engine's names is refused when it is created
(:func:`check_component_class`), so no subclass can break the engine by picking a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from sfpy.engine.lifecycle import LifecycleLock
    from sfpy.engine.liveness import LivenessMonitor
    from sfpy.engine.prim import State
    from sfpy.engine.scheduler import Scheduler
    from sfpy.engine.steps import Activity
    from sfpy.engine.termination import TerminationRecord


@runtime_checkable
class Navigable(Protocol):
    """A node LAZY references can walk through."""

    def sf_lookup(self, name: Any, first: bool) -> Any: ...

    def sf_names(self) -> list[str]: ...

    def sf_container(self, for_attrib: bool) -> Any: ...

    def sf_root(self) -> Any: ...


@runtime_checkable
class LifecycleChild(Navigable, Protocol):
    """What a parent drives in a child."""

    @property
    def sf_name(self) -> str: ...

    @property
    def state(self) -> State: ...

    @property
    def sf_lifecycle(self) -> LifecycleLock | None: ...

    def sf_complete_name(self) -> str: ...

    def sf_parent(self) -> Any: ...

    def sf_deploy_pass(self) -> None: ...

    def sf_start_pass(self) -> None: ...

    def sf_terminate_now(self, record: TerminationRecord, notify: bool = True) -> None: ...

    def sf_wait_terminated_elsewhere(self) -> None: ...

    def sf_ping(self, source: Any = None) -> None: ...

    def sf_liveness_settings(self) -> tuple[float, int]: ...


@runtime_checkable
class ComponentParent(Protocol):
    """What a child asks of its parent."""

    @property
    def state(self) -> State: ...

    def sf_complete_name(self) -> str: ...

    def sf_child_terminated(self, child: Any, record: TerminationRecord) -> None: ...

    def sf_forget_child(self, child: Any) -> None: ...

    def sf_remove_child(self, child: Any) -> None: ...

    def sf_liveness_monitor(self) -> LivenessMonitor: ...

    def sf_liveness_settings(self) -> tuple[float, int]: ...


@runtime_checkable
class ProcessServices(Navigable, Protocol):
    """What a component asks of its process."""

    name: str
    scheduler: Scheduler
    terminate_timeout: float
    journal: Any
    host_layer: Any
    placement: Any

    def sf_complete_name(self) -> str: ...

    def state_changed(self, component: Any, state: State) -> None: ...

    def activity_changed(self, activity: Activity, begun: bool) -> None: ...

    def application_terminated(self, root: Any, record: TerminationRecord) -> None: ...

    def cleanup_failed(self, component: Any, error: BaseException) -> None: ...

    def adopt(self, component: Any) -> None: ...

    def sf_liveness_monitor(self) -> LivenessMonitor: ...

    def resolve_host(self, name: str | None) -> Any: ...


class Adoptable(Protocol):
    """The re-adoption contract (a daemon restarted after ``kill -9``; docs/engine.md).

    The daemon rebuilds each application it had fully started from the description it
    journaled, without running deploy or start hooks, and asks every component, parents
    first, ``adopt(entries) -> bool`` with the open journal entries it owns (what it made
    and had not undone). Only when every component says True, and every open entry of the
    application belongs to one of them, is the application live again: each component is
    STARTED, pinged by its parent, and its terminate hook runs at the end as after a start.
    Otherwise nothing was started by ``adopt`` (it must only check and remember), the
    rebuilt tree is dropped without hooks, and the journal's cleaners undo everything.
    :meth:`sfpy.engine.prim.Prim.adopt` is the default: adoptable when nothing it made is
    still there (and not a workflow container); a component that makes something
    long-lived (a process group, a domain) overrides it to take that back when it still
    exists (``BashProcess``: its group by pid and start time; ``RemoteSubtree``: its part,
    when the other daemon still runs it)."""

    def adopt(self, entries: list[Any]) -> bool: ...


#: What a component class may define although Prim or Compound has it: the hooks and the
#: class-level switches.
AUTHOR_NAMES = frozenset(
    {
        "deploy",
        "start",
        "started",
        "terminate",
        "ping",
        "attribute_changed",
        "child_terminated",
        "adopt",
        "child_descriptions",
        "is_compound",
        "deploy_children_with_parent",
        "start_children_concurrently",
        "declared_attributes",
    }
)
_CORE_MODULES = ("sfpy.engine.prim", "sfpy.engine.compound", "sfpy.engine.placement")


def check_component_class(cls: type) -> None:
    """Refuse a component class that defines one of the engine's names (anything Prim or
    Compound defines but the hooks, and every ``sf_``/``_sf_`` name): Python would let it
    shadow the engine's member silently, and the engine would break in odd places."""
    if cls.__module__ in _CORE_MODULES:
        return
    reserved: set[str] = set()
    for base in cls.__mro__[1:]:
        if base.__module__ in _CORE_MODULES:
            reserved.update(name for name in vars(base) if not name.startswith("__"))
    clashes = sorted(
        name
        for name in vars(cls)
        if not name.startswith("__")
        and name not in AUTHOR_NAMES
        and (name in reserved or name.startswith(("sf_", "_sf_")))
    )
    if clashes:
        raise TypeError(
            f"component class {cls.__module__}.{cls.__qualname__} defines "
            f"{', '.join(clashes)}, which the engine uses: rename "
            f"{'them' if len(clashes) > 1 else 'it'} (names starting with sf_ or _sf_ are "
            f"the engine's; hooks are deploy, start, started, terminate, ping, "
            f"attribute_changed, child_terminated, adopt)"
        )
