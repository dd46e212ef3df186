"""The parser's table cache: used when trusted, refused otherwise, never runs code."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sfpy.language import tablecache

SAMPLE = """
#include "org/smartfrog/components.sf"
Base extends { a 1; b ("x" ++ "y"); v [1, 2L, 3.5D]; }
sfConfig extends Base { a 2; c LAZY PARENT:a; d IF (a == 2) THEN true ELSE false FI; }
"""

# A fresh process parses SAMPLE and prints the resolved result and where its tables came from.
PROBE = """
import sys
from sfpy.language import tablecache
calls = []
real = tablecache.load_or_build
def spy(grammar, build, **kw):
    def counted():
        calls.append(1)
        return build()
    return real(grammar, counted, **kw)
tablecache.load_or_build = spy
from sfpy.language import parse_text, resolve
from sfpy.language.unparse import to_sf
print(to_sf(resolve(parse_text(sys.stdin.read()))))
print("BUILT" if calls else "LOADED")
"""


def probe(cache: Path, **env: str) -> tuple[str, str]:
    environment = {**os.environ, "SFPY_CACHE_DIR": str(cache), **env}
    if "SFPY_PARSER_CACHE" not in env:
        environment.pop("SFPY_PARSER_CACHE", None)
    done = subprocess.run([sys.executable, "-c", PROBE], input=SAMPLE, text=True,
                          capture_output=True, env=environment, timeout=120, check=True)
    text, how = done.stdout.rstrip("\n").rsplit("\n", 1)
    return text, how


def cache_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("sf-tables-*.pickle"))


def test_second_process_loads_the_tables_and_parses_the_same(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, how = probe(cache)
    assert how == "BUILT"
    [saved] = cache_files(cache)
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert not os.stat(saved).st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    second, how = probe(cache)
    assert how == "LOADED"
    assert second == first
    plain, _ = probe(tmp_path / "unused", SFPY_PARSER_CACHE="off")
    assert plain == first
    assert not (tmp_path / "unused").exists()


def test_a_file_others_may_write_is_not_loaded(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    probe(cache)
    [saved] = cache_files(cache)
    saved.chmod(0o666)
    _, how = probe(cache)
    assert how == "BUILT"


def test_a_folder_others_may_write_is_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    probe(cache)
    cache.chmod(0o777)
    _, how = probe(cache)
    assert how == "BUILT"


def test_a_file_owned_by_another_user_is_not_loaded(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    cache = tmp_path / "cache"
    probe(cache)
    [saved] = cache_files(cache)
    os.chown(saved, 65534, 65534)
    _, how = probe(cache)
    assert how == "BUILT"


def test_a_tampered_file_runs_no_code_and_the_tables_are_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    probe(cache)
    [saved] = cache_files(cache)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    saved.write_bytes(pickle.dumps({"data": Evil(), "memo": {}}))
    text, how = probe(cache)
    assert how == "BUILT"
    assert "c LAZY PARENT:a;" in text
    assert not marker.exists()


def test_the_key_changes_with_the_grammar_and_lark() -> None:
    assert tablecache.cache_key("a") != tablecache.cache_key("b")
    assert tablecache.cache_key("a") == tablecache.cache_key("a")
