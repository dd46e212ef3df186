"""The sfClass registry: only registered classes deploy; an unknown or missing sfClass
anywhere in the tree is a description error before anything is created."""

from __future__ import annotations

import pytest
from engine_components import COMPOUND, PRIM, cd

from sfpy.engine import ComponentClassError, Compound, Prim, lookup, register, registry
from sfpy.language.errors import DescriptionError


def test_smartfrog_class_names_are_aliases_of_the_engine_classes():
    assert lookup("org.smartfrog.sfcore.prim.PrimImpl") is Prim
    assert lookup("org.smartfrog.sfcore.compound.CompoundImpl") is Compound
    assert lookup("sfpy.engine.Compound") is Compound


def test_setup_cfg_declares_the_entry_point_group():
    entries = registry._source_tree_entry_points()
    assert entries["org.smartfrog.sfcore.compound.CompoundImpl"] == "sfpy.engine.compound:Compound"
    assert entries["org.smartfrog.sfcore.prim.PrimImpl"] == "sfpy.engine.prim:Prim"


def test_an_unknown_sfclass_deploys_nothing(process, journal):
    description = cd(
        COMPOUND,
        a=cd("test.Recorder"),
        b=cd(COMPOUND, c=cd("org.smartfrog.sfcore.compound.CompoundImp")),
    )
    with pytest.raises(ComponentClassError) as failure:
        process.deploy(description)
    error = failure.value
    assert isinstance(error, DescriptionError) and error.exit_code == 3
    assert error.path == "sfConfig:b:c"
    assert "did you mean 'org.smartfrog.sfcore.compound.CompoundImpl'" in error.render()
    assert journal == []  # no hook ran anywhere
    assert process.applications() == {}


def test_every_class_problem_is_reported_once(process):
    description = cd(COMPOUND, a=cd("no.such.Thing"), b=cd(None, x=1), c=cd(42))
    with pytest.raises(ComponentClassError) as failure:
        process.deploy(description)
    paths = [e.path for e in failure.value.all()]
    assert paths == ["sfConfig:a", "sfConfig:b", "sfConfig:c"]
    text = failure.value.render()
    assert "unknown sfClass 'no.such.Thing'" in text
    assert "HERE sfClass" in text  # SmartFrog's words for a missing sfClass (tcn28)
    assert "must be a string" in text


def test_a_description_without_sfclass_is_an_error():
    from sfpy.engine import Process

    with pytest.raises(ComponentClassError, match="no sfClass"):
        Process().check(cd(None, child=cd(PRIM)))


def test_actions_of_a_workflow_container_are_checked_before_deployment(process, journal):
    description = cd(
        COMPOUND, seq=cd("test.Sequential", one=cd("test.Recorder"), two=cd("missing.Class"))
    )
    with pytest.raises(ComponentClassError) as failure:
        process.deploy(description)
    assert failure.value.path == "sfConfig:seq:two"
    assert journal == []


def test_smartfrog_classes_not_provided_say_so(process):
    with pytest.raises(ComponentClassError, match="SmartFrog workflow component that this sfpy"):
        process.check(cd("org.smartfrog.sfcore.workflow.combinators.RandomSequence"))


def test_register_by_module_path_and_a_broken_registration():
    register("test.ByPath", "engine_components:Recorder")
    assert lookup("test.ByPath").__name__ == "Recorder"
    register("test.Broken", "no_such_module:Thing")
    with pytest.raises(registry.UnknownComponentClass, match="cannot be loaded"):
        lookup("test.Broken")
    register("test.NotAComponent", "collections:OrderedDict")
    with pytest.raises(registry.UnknownComponentClass, match="not a component class"):
        lookup("test.NotAComponent")
    for name in ("test.ByPath", "test.Broken", "test.NotAComponent"):
        registry.unregister(name)


def test_data_descriptions_are_not_checked(process):
    # a DATA description is never deployed, so its sfClass does not matter
    app = process.deploy(cd(COMPOUND, template=cd("not.deployed", eager=False)))
    assert app.sf_children() == []
