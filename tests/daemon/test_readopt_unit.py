"""``Process.readopt`` and the ``adopt`` hook contract, in this process (no daemon): all or
nothing, no deploy or start hook run again, every open entry owned, workflow containers and
components holding something refused by default, terminate hooks run after adoption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sfpy.engine import Prim, Process, register
from sfpy.engine.prim import State, iter_tree
from sfpy.engine.process import AdoptionRefused
from sfpy.host.journal import Entry, Journal, register_cleaner
from sfpy.language import load

EVENTS: list[tuple[str, str]] = []


class Holder(Prim):
    """Made a ``held`` thing at start; adopts it when its data says it is still there."""

    def start(self) -> None:
        EVENTS.append(("start", self.sf_complete_name()))

    def adopt(self, entries: list[Entry]) -> bool:
        EVENTS.append(("adopt", self.sf_complete_name()))
        self.taken = [entry.id for entry in entries]
        return all(entry.data.get("there") for entry in entries)

    def terminate(self, record: Any) -> None:
        EVENTS.append(("terminate", self.sf_complete_name()))


class Broken(Prim):
    def adopt(self, entries: list[Entry]) -> bool:
        raise RuntimeError("cannot look")


register("test.readopt.Holder", Holder)
register("test.readopt.Broken", Broken)
register_cleaner("held", lambda entry: "nothing to do")


def tree(tmp_path: Path, body: str):
    path = tmp_path / "app.sf"
    path.write_text('#include "org/smartfrog/components.sf"\n'
                    '#include "org/smartfrog/sfcore/workflow/components.sf"\n' + body,
                    encoding="utf-8")
    return load(str(path))


@pytest.fixture
def journal(tmp_path: Path):
    journal = Journal(tmp_path / "run", run_id="app")
    yield journal
    journal.close()


@pytest.fixture
def process(journal: Journal):
    EVENTS.clear()
    process = Process("rootProcess", journal=journal)
    yield process
    process.shutdown(timeout=10)


HOLDERS = """
    sfConfig extends Compound {
        sfLivenessDelay 0;
        h1 extends Prim { sfClass "test.readopt.Holder"; }
        inner extends Compound { h2 extends Prim { sfClass "test.readopt.Holder"; } }
    }"""


def test_every_component_adopts_and_runs_on_without_deploy_or_start(
    tmp_path: Path, journal: Journal, process: Process
) -> None:
    entry = journal.add("held", "app:inner:h2", {"there": True})
    root, = process.readopt([(tree(tmp_path, HOLDERS), "app")], journal.open_entries())
    assert [event for event, _ in EVENTS] == ["adopt", "adopt"]  # no start hook ran
    assert {c.state for c in iter_tree(root)} == {State.STARTED}
    assert root.sf_resolve("inner:h2").taken == [entry]
    assert process.application("app") is root
    root.sf_terminate()
    assert root.wait_terminated(10) is not None
    assert ("terminate", "app:inner:h2") in EVENTS and ("terminate", "app:h1") in EVENTS


def test_one_refusal_refuses_all_and_runs_no_hook(
    tmp_path: Path, journal: Journal, process: Process
) -> None:
    journal.add("held", "app:inner:h2", {"there": False})
    with pytest.raises(AdoptionRefused, match="app:inner:h2 cannot take back"):
        process.readopt([(tree(tmp_path, HOLDERS), "app")], journal.open_entries())
    assert process.applications() == {}
    assert [event for event, _ in EVENTS] == ["adopt", "adopt"]  # no terminate either


def test_an_entry_nobody_owns_refuses(tmp_path: Path, journal: Journal, process: Process) -> None:
    journal.add("held", "app:vanished", {"there": True})
    with pytest.raises(AdoptionRefused, match="app:vanished made something"):
        process.readopt([(tree(tmp_path, HOLDERS), "app")], journal.open_entries())
    assert process.applications() == {}


@pytest.mark.parametrize("body, words", [
    ('sfConfig extends Compound { b extends Prim { sfClass "test.readopt.Broken"; } }',
     "app:b cannot take back"),
    ('sfConfig extends Sequence { a extends Compound; }', "app cannot take back"),
    ('sfConfig extends Compound { x extends Prim { sfClass "no.such.Class"; } }', "no.such"),
])
def test_refusals(tmp_path: Path, journal: Journal, process: Process, body: str,
                  words: str) -> None:
    with pytest.raises(AdoptionRefused, match=words):
        process.readopt([(tree(tmp_path, body), "app")], [])
    assert process.applications() == {}


def test_the_journal_keeps_notes_across_adoption(tmp_path: Path) -> None:
    first = Journal(tmp_path / "run", run_id="app")
    first.note({"state": "running", "description": "{}"})
    first.note({"state": "terminating"})
    first.close()  # "killed"
    again = Journal.adopt(tmp_path / "run")
    try:
        assert again.notes() == {"state": "terminating", "description": "{}"}
    finally:
        again.close()


def test_adopt_is_an_author_hook() -> None:
    class Mine(Prim):
        def adopt(self, entries: list[Entry]) -> bool:
            return True

    with pytest.raises(TypeError, match="sf_adopt"):
        class Clash(Prim):
            def sf_adopt(self, entries: list[Entry]) -> bool:
                return True


def xen_site(tmp_path: Path) -> Any:
    """A XenDomain on a loopback backend, its ``xl`` the stand-in keeping state in xl/."""
    stand_ins = Path(__file__).resolve().parents[1] / "stand_ins"
    path = f"{stand_ins}:/usr/bin:/bin:/usr/sbin:/sbin"
    for folder in ("images", "scratch", "saved", "cfg", "xl"):
        (tmp_path / folder).mkdir()
    text = f"""
        #include "org/smartfrog/components.sf"
        #include "org/smartfrog/services/shellscript/components.sf"
        #include "ch/cern/openlab/smartdomains/components.sf"
        sfConfig extends Compound {{
          sfLivenessDelay 0;
          myShell extends BashShell {{ envProperties ["PATH={path}", "SFPY_XL_STATE={tmp_path}/xl"]; }}
          loop extends LoopbackStorageBackend {{ shell LAZY ATTRIB myShell;
            baseImage "{tmp_path}/base.tar.gz"; imageDirectory "{tmp_path}/images";
            scratchDirectory "{tmp_path}/scratch"; volumeSize "64M"; swapSize "16m"; }}
          Vm1 extends XenDomain {{ shell LAZY ATTRIB myShell; storageBackend LAZY ATTRIB loop;
            domainName "vm1"; hostname "vm1.cern.ch"; ip "10.1.2.3"; netmask "255.255.0.0";
            kernel "{tmp_path}/vmlinuz"; memory 512; configDirectory "{tmp_path}/cfg"; }}
        }}"""
    (tmp_path / "site.sf").write_text(text, encoding="utf-8")
    return load(str(tmp_path / "site.sf"))


@pytest.mark.parametrize("running", [True, False])
def test_xen_domain_adopts_the_domain_xl_still_lists(
    tmp_path: Path, journal: Journal, process: Process, running: bool
) -> None:
    import json
    import time

    import sfpy.components.xen  # noqa: F401 - registers the xen-domain cleaner

    description = xen_site(tmp_path)
    if running:
        (tmp_path / "xl" / "vm1.json").write_text(json.dumps(
            {"name": "vm1", "domid": 3, "memory": 512, "vcpus": 1, "started": time.time()}))
    for volume in ("xen-domain-vm1.img", "xen-domain-vm1-swap.img"):  # the backend's
        (tmp_path / "images" / volume).write_bytes(b"volume")
        journal.add("file", "app:loop", {"path": str(tmp_path / "images" / volume)})
    config = tmp_path / "cfg" / "vm1.cfg"
    config.write_text("name = 'vm1'\n")
    journal.add("file", "app:Vm1", {"path": str(config)})
    journal.add("xen-domain", "app:Vm1", {"name": "vm1", "xl": "xl"})
    if not running:
        with pytest.raises(AdoptionRefused, match="app:Vm1 cannot take back"):
            process.readopt([(description, "app")], journal.open_entries())
        return
    root, = process.readopt([(description, "app")], journal.open_entries())
    domain = root.sf_resolve("Vm1")
    assert domain.state is State.STARTED and domain.created
    root.sf_terminate()
    assert root.wait_terminated(60) is not None
    assert not (tmp_path / "xl" / "vm1.json").exists()  # terminate shut the domain down
    assert not config.exists() and journal.open_entries() == []
    assert list((tmp_path / "images").iterdir()) == []  # the backend deleted its volumes
