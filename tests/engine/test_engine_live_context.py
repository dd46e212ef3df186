"""The engine resolves with the language's resolver through a live-tree context: the places
where the live tree differs from a description tree."""

from __future__ import annotations

import pytest
from engine_components import COMPOUND, cd

from sfpy.engine import ResolutionError
from sfpy.language.model import Reference, RefPart


def lazy(*parts: RefPart) -> Reference:
    return Reference(list(parts), lazy=True)


def test_parent_inside_a_data_description_leads_back_to_the_component(process):
    data = cd(None, eager=False, up=lazy(RefPart("PARENT"), RefPart("HERE", "own")))
    data.put("root", lazy(RefPart("ROOT")))
    app = process.deploy(cd(COMPOUND, own="O", settings=data))
    assert app.sf_resolve("settings:up") == "O"
    app.sf_replace_attribute("own", "live")  # the component, not the description it came from
    assert app.sf_resolve("settings:up") == "live"
    assert app.sf_resolve("settings:root") is app


def test_property_reads_the_process_properties_first(process):
    process.properties["site.name"] = "lab"
    app = process.deploy(cd("test.Recorder", site=lazy(RefPart("PROPERTY", "site.name"))))
    assert app.sf_resolve("site") == "lab"


def test_attrib_reaches_the_process_but_parent_of_the_root_fails(process):
    app = process.deploy(cd("test.Recorder"))
    assert app.sf_resolve("ATTRIB sfProcessName") == "testProcess"
    with pytest.raises(ResolutionError, match="sfConfig has no parent"):
        app.sf_resolve("PARENT:sfProcessName")


def test_a_lazy_apply_is_evaluated_on_a_copy_every_read(process, load_text):
    config = load_text("""
        sfConfig extends Compound {
            base extends Prim { sfClass "test.Recorder"; value 10; }
            user extends Prim {
                sfClass "test.Recorder";
                current LAZY PARENT:base:value;
                total (current + 5);
            }
        }
    """)
    app = process.deploy(config)
    user = app.sf_resolve("user")
    stored = user.sf_context()["total"]
    before = dict(stored.description.attributes)
    assert user.sf_resolve("total") == 15
    app.sf_resolve("base").sf_replace_attribute("value", 1)
    assert user.sf_resolve("total") == 6
    assert user.sf_context()["total"] is stored
    assert dict(stored.description.attributes) == before
