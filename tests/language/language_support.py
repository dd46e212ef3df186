"""Helpers shared by the language tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfpy.language import DescriptionError, load


def description_error(tmp_path: Path, text: str) -> DescriptionError:
    """The error that loading ``text`` (written to ``tmp_path/t.sf``) raises; fails if none."""
    path = tmp_path / "t.sf"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DescriptionError) as caught:
        load(path)
    return caught.value
