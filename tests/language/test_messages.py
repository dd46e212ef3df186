"""Resolution messages that explain the rule a user ran into, not just the symptom."""

from __future__ import annotations

import pytest

from sfpy.language import DescriptionError, parse_text, resolve


def first_line(text: str) -> str:
    with pytest.raises(DescriptionError) as caught:
        resolve(parse_text(text, "t.sf"))
    return caught.value.render().splitlines()[0]


def test_sflocal_attribute_seen_from_outside():
    line = first_line("one extends { [sfLocal] foo 1; } sfConfig extends { x one:foo; }")
    assert line.endswith("'foo' in one is tagged sfLocal: only references written inside one see it")
    assert "did you mean" not in line


def test_extending_what_contains_you_is_a_cycle():
    assert first_line("sfConfig extends { a extends sfConfig; }").endswith(
        "cyclic extends: sfConfig:a extends sfConfig, which contains sfConfig:a"
    )


def test_did_you_mean_a_sibling():
    assert first_line("sfConfig extends { disk 1; s dsik; }").endswith(
        "unresolved reference dsik: no attribute 'dsik' in sfConfig or its parents (did you mean 'disk'?)"
    )
