"""An application that ends right after it started was deployed: Process.deploy returns it.

A command that exits at once ends its component from the watcher thread, possibly while
``Process.deploy`` is still draining requests; that is the application's end (reported by its
record), not a failed deployment.
"""

from __future__ import annotations

import threading

from engine_components import cd

from sfpy.engine import Prim, TerminationRecord, register


class EndsFromAnotherThread(Prim):
    """Asks for its abnormal end from another thread and waits until that request is queued."""

    def start(self) -> None:
        asker = threading.Thread(
            target=self.sf_terminate, args=(TerminationRecord.abnormal("exited with code 3"),)
        )
        asker.start()
        asker.join()


def test_abnormal_end_after_a_full_start_is_not_a_failed_deployment(process):
    register("test.EndsFromAnotherThread", EndsFromAnotherThread)
    root = process.deploy(cd(a=cd("test.EndsFromAnotherThread")))
    record = root.wait_terminated(5)
    assert record is not None and not record.is_normal
    assert record.description == "exited with code 3" and record.id == "sfConfig:a"
