"""Running descriptions: components with SmartFrog's lifecycle, liveness and termination.

Public surface (see docs/engine.md, the component author's guide)::

    from sfpy.engine import Process, Prim, Compound, TerminationRecord, register

    class Touch(Prim):
        def start(self):
            Path(self.sf_resolve("file")).touch()

    register("example.Touch", Touch)
    process = Process()
    app = process.deploy(sf_config)        # build the tree, deploy all, start all
    record = app.wait_terminated()

Modules: :mod:`.prim` (Prim, State), :mod:`.compound`, :mod:`.termination`,
:mod:`.process` (the applications of this OS process), :mod:`.registry` (sfClass → class),
:mod:`.deployer` (checking and building the tree), :mod:`.resolve` (LAZY references at run
time), :mod:`.liveness`, :mod:`.scheduler` (one timer thread), :mod:`.lifecycle` (the lock
discipline). Nothing here talks to the network: a child may later be a handle to a
component in another process (the daemons).
"""

from __future__ import annotations

# The component author's façade is part of the package's surface; the rest is for running.
from sfpy.engine.api import *  # noqa: F403
from sfpy.engine.api import __all__ as _author_names
from sfpy.engine.errors import ComponentClassError, DeploymentError
from sfpy.engine.process import Process
from sfpy.engine.registry import lookup

__all__ = [*_author_names, "ComponentClassError", "DeploymentError", "Process", "lookup"]
