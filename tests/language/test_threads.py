"""The language in many threads: no process-wide state changes, the same results everywhere.

sfpy never raises the recursion limit or turns the garbage collector off (another thread
could put them back in the middle of a deep resolution); deep chains resolve at Python's
default limit, in any thread, because the deep paths defer work to explicit stacks.
"""

from __future__ import annotations

import gc
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sfpy.language import load, parse_text, resolve
from sfpy.language.unparse import from_json, to_json, to_sf

DEEP = 3000


def _links() -> str:
    body = "".join(f"  a{n} a{n + 1};\n" for n in range(DEEP)) + f"  a{DEEP} 42;\n"
    return "sfConfig extends {\n" + body + "}\n"


def _functions() -> str:
    body = "".join(f"  a{n} (1 + a{n + 1});\n" for n in range(DEEP)) + f"  a{DEEP} 0;\n"
    return "sfConfig extends {\n" + body + "}\n"


def _prototypes() -> str:
    body = "".join(f"t{n} extends t{n + 1};\n" for n in range(DEEP))
    return body + f"t{DEEP} extends {{ x 1; }}\nsfConfig extends t0;\n"


def _ifs() -> str:
    return "sfConfig extends { a " + "IF true THEN " * DEEP + "1" + " ELSE 2 FI" * DEEP + "; }\n"


def _nested() -> str:
    body = "".join(f"t{n} extends {{ c extends t{n + 1}; }}\n" for n in range(400))
    return body + "t400 extends { x 1; }\nsfConfig extends t0;\n"


def _shallow() -> str:
    return (
        '#include "org/smartfrog/components.sf"\n'
        'sfConfig extends Compound { host "h"; port 80; url ("http://" ++ host ++ ":" ++ port);\n'
        "  v [1, 2, port]; n extends { p PARENT:port; q LAZY ATTRIB host; } }\n"
    )


TEXTS = {
    "links": _links(),
    "functions": _functions(),
    "prototypes": _prototypes(),
    "ifs": _ifs(),
    "nested": _nested(),
    "shallow": _shallow(),
}


def _printed(name: str) -> str:
    return to_sf(resolve(parse_text(TEXTS[name], f"<{name}>")))


def test_deep_descriptions_resolve_at_the_default_recursion_limit() -> None:
    assert sys.getrecursionlimit() <= 1000, "the test must run at Python's default limit"
    assert _printed("links").startswith("a0 42;\n")
    assert _printed("functions").startswith(f"a0 {DEEP};\n")
    assert _printed("prototypes") == "x 1;\n"
    assert _printed("ifs") == "a 1;\n"
    assert _printed("nested").count("c extends") == 400


def test_a_deep_cycle_is_one_clean_error() -> None:
    body = "".join(f"  a{n} a{n + 1};\n" for n in range(DEEP)) + f"  a{DEEP} a0;\n"
    try:
        resolve(parse_text("sfConfig extends {\n" + body + "}\n"))
    except Exception as error:  # noqa: BLE001 - checked below
        assert type(error).__name__ == "CycleError", error
        assert len(error.all()) == 1
        assert "cyclic reference" in error.message
    else:
        raise AssertionError("a cycle resolved")


def test_many_threads_resolve_deep_and_shallow_descriptions_alike() -> None:
    expected = {name: _printed(name) for name in TEXTS}
    jobs = [name for _ in range(2) for name in TEXTS]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(2):
            results = list(pool.map(lambda name: (name, _printed(name)), jobs))
            for name, printed in results:
                assert printed == expected[name], name


def test_threads_started_by_hand_with_their_own_stacks_agree() -> None:
    expected = _printed("links")
    outcomes: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        value = _printed("links")
        with lock:
            outcomes.append(value)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes == [expected] * 4


def test_no_code_path_changes_the_recursion_limit_or_the_collector(tmp_path: Path) -> None:
    limit = sys.getrecursionlimit()
    collecting = gc.isenabled()
    seen: list[tuple[int, bool]] = []

    def watch(frame, event, arg):  # noqa: ANN001, ANN202 - a profile hook
        seen.append((sys.getrecursionlimit(), gc.isenabled())) if event == "return" else None

    sys.setprofile(watch)
    try:
        for name in TEXTS:
            printed = resolve(parse_text(TEXTS[name]))
            if name != "nested":  # deeper than the JSON form's limit
                from_json(to_json(printed))
        path = tmp_path / "x.sf"
        path.write_text(_shallow(), encoding="utf-8")
        load(path)
    finally:
        sys.setprofile(None)
    assert seen and set(seen) == {(limit, collecting)}


def test_uniquen_names_do_not_depend_on_earlier_parses() -> None:
    text = 'sfConfig extends { a ("x" ++ "y"); b [1, 2]; }'
    first = parse_text(text)
    for _ in range(3):
        parse_text(text)
    again = parse_text(text)
    assert to_sf(first) == to_sf(again)
