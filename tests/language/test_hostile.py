"""Hostile input through the real ``sfparse`` process: a result or a clean error, quickly.

Every case runs ``sfparse`` as a user would (a separate process, address space capped with
RLIMIT_AS, its own peak RSS measured with ``wait4``) and checks the contract of issue 2:
it returns within seconds, exits 0 or 3, an error says ``error:`` on stderr and never shows a
Python traceback, and nothing is printed on stdout when it fails.
"""

from __future__ import annotations

import os
import random
import re
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# A clean error "within seconds": generous for a loaded 2-core machine, where starting Python
# and importing lark alone takes a few tenths of a second.
TIME_LIMIT = 5.0
HARD_TIMEOUT = 15.0  # the process is killed after this; the test then fails as a hang
ADDRESS_SPACE = 2 * 1024**3  # RLIMIT_AS for the child
RSS_LIMIT_KB = 1024 * 1024  # peak resident memory allowed, in KiB (wait4's unit on Linux)


def _sfparse_command() -> list[str]:
    """The installed console script next to this Python, else on PATH, else ``-m``."""
    beside = Path(sys.executable).parent / "sfparse"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("sfparse")
    if found:
        return [found]
    return [sys.executable, "-m", "sfpy.cli.sfparse"]


SFPARSE = _sfparse_command()


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    max_rss_kb: int

    def errors(self) -> list[str]:
        """The first lines of each reported mistake (``…: error: …``)."""
        return [line for line in self.err.splitlines() if "error: " in line and not line.startswith(" ")]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def sfparse(*args: object, cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run sfparse with a hard timeout and a memory cap; measure its time and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [*SFPARSE, *(str(a) for a in args)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=_limit_memory,
        )
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > HARD_TIMEOUT:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                pytest.fail(f"sfparse {' '.join(map(str, args))} still running after {HARD_TIMEOUT} s")
            time.sleep(0.005)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            seconds,
            usage.ru_maxrss,
        )


def assert_bounded(run: Run) -> None:
    assert run.seconds < TIME_LIMIT, f"took {run.seconds:.2f} s\n{run.err[:2000]}"
    assert run.max_rss_kb < RSS_LIMIT_KB, f"peak RSS {run.max_rss_kb // 1024} MiB"
    assert "Traceback" not in run.err, run.err[:4000]
    assert "internal error" not in run.err, run.err[:4000]
    assert "Fatal Python error" not in run.err, run.err[:4000]


def assert_clean_error(run: Run, *needles: str) -> None:
    """Exit 3, ``error:`` on stderr, nothing on stdout, no traceback, within the limits."""
    assert_bounded(run)
    assert run.code == 3, f"exit {run.code}\nstdout: {run.out[:500]}\nstderr: {run.err[:2000]}"
    assert "error: " in run.err
    assert run.out == ""
    for needle in needles:
        assert needle in run.err, f"{needle!r} not in:\n{run.err[:3000]}"


def assert_result_or_clean_error(run: Run) -> None:
    assert_bounded(run)
    assert run.code in (0, 3), f"exit {run.code}\n{run.err[:2000]}"
    if run.code == 3:
        assert_clean_error(run)
    else:
        assert run.err == ""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- random and binary bytes ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "random.sf"
    path.write_bytes(random.Random(seed).randbytes(200_000))
    assert_clean_error(sfparse(path, cwd=tmp_path))


@pytest.mark.parametrize("seed", [4, 5])
def test_random_bytes_without_nul(tmp_path: Path, seed: int) -> None:
    """No NUL to give it away as binary: refused as text that is not UTF-8."""
    data = random.Random(seed).randbytes(200_000).replace(b"\0", b"")
    path = tmp_path / "random.sf"
    path.write_bytes(data)
    assert_clean_error(sfparse(path, cwd=tmp_path), "UTF-8")


ALPHABET = "abcxyz019_-.$ \t\n{}[]()|;:,\"'#/*+<>=!&%@LDfF"
TOKENS = (
    "extends DATA LAZY NULL TBD true false OPTIONAL APPLY ASSERT ROOT PARENT THIS ATTRIB HERE "
    "HOST PROPERTY CONSTANT IF THEN ELSE FI SWITCH ENDSWITCH #include #include? sfConfig a b c "
    "1 -1 2L 1.5 1.5D \"s\" ##m# #HEX#AB# { } [ ] [| |] ( ) ; : , -- + - * / % ++ <> && || x| "
    "-> ! == != > >= < <="
).split()


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_random_printable_text(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = write(tmp_path / "text.sf", "".join(rng.choice(ALPHABET) for _ in range(100_000)))
    assert_result_or_clean_error(sfparse(path, cwd=tmp_path))


@pytest.mark.parametrize("seed", [9, 10, 11, 12])
def test_random_tokens(tmp_path: Path, seed: int) -> None:
    """Random sequences of the language's own tokens go much deeper into the parser."""
    rng = random.Random(seed)
    words = [rng.choice(TOKENS) for _ in range(20_000)]
    path = write(tmp_path / "tokens.sf", "sfConfig extends { " + " ".join(words) + " }\n")
    run = sfparse(path, cwd=tmp_path)
    assert_result_or_clean_error(run)
    assert len(run.errors()) <= 10 + 1, "at most ten mistakes are reported (MAX_REPORTED_ERRORS)"


def test_binary_file(tmp_path: Path) -> None:
    source = Path("/bin/ls") if Path("/bin/ls").is_file() else Path(sys.executable)
    path = tmp_path / "program.sf"
    shutil.copyfile(source, path)
    assert_clean_error(sfparse(path, cwd=tmp_path), "binary")


def test_nul_bytes_after_valid_text(tmp_path: Path) -> None:
    path = tmp_path / "nul.sf"
    path.write_bytes(b"sfConfig extends { a 1; }\n\0\0\0junk\0")
    assert_clean_error(sfparse(path, cwd=tmp_path), "nul.sf")


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.sf"
    path.write_bytes('sfConfig extends {\n  name "Jos\u00e9";\n}\n'.encode("latin-1"))
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run, "UTF-8")
    # The first bad byte follows '  name "Jos' on line 2: column 12.
    assert run.errors()[0].startswith(f"{path}:2:12: error: not UTF-8"), run.err


# ---- nesting -------------------------------------------------------------------------------

DEPTH = 10_000


@pytest.mark.parametrize(
    "form",
    [
        "sfConfig extends {" + "a extends {" * DEPTH + "}" * (DEPTH + 1),
        "sfConfig extends { a " + "(" * DEPTH + "1" + ")" * DEPTH + "; }",
        "sfConfig extends { a " + "[" * DEPTH + "1" + "]" * DEPTH + "; }",
        "sfConfig extends { a " + "[|" * DEPTH + "1" + "|]" * DEPTH + "; }",
        "sfConfig extends {" + "a extends {" * DEPTH,  # never closed
        "sfConfig extends { a " + "(" * DEPTH + "; }",
    ],
    ids=["braces", "parentheses", "brackets", "vectors", "unclosed-braces", "unclosed-parentheses"],
)
def test_ten_thousand_levels_of_nesting(tmp_path: Path, form: str) -> None:
    path = write(tmp_path / "deep.sf", form + "\n")
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run, "nesting deeper than 200 levels")
    assert len(run.errors()) == 1


@pytest.mark.parametrize(
    "form",
    [
        "sfConfig extends { a " + "IF true THEN " * DEPTH + "1" + " ELSE 2 FI" * DEPTH + "; }",
        "sfConfig extends { a (" + "!" * DEPTH + "true); }",
        "sfConfig extends { a " + ":".join(["PARENT"] * DEPTH) + "; }",
        "sfConfig extends { a:" + ":".join(f"p{i}" for i in range(DEPTH)) + " 1; }",
    ],
    ids=["if-then-else", "not", "parent-chain", "placement"],
)
def test_deep_structures_without_brackets(tmp_path: Path, form: str) -> None:
    """Depth the lexer's bracket count cannot see: recursion must still end in a clean message."""
    path = write(tmp_path / "deep.sf", form + "\n")
    assert_result_or_clean_error(sfparse(path, cwd=tmp_path))


# ---- size ----------------------------------------------------------------------------------

FIFTY_MB = 50 * 1024 * 1024


def test_fifty_megabytes_of_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sf"
    rng = random.Random(13)
    with path.open("wb") as handle:
        chunk = bytes(rng.choice(b"abc{}();: \n\"#") for _ in range(1 << 20))
        for _ in range(FIFTY_MB >> 20):
            handle.write(chunk)
    try:
        assert_clean_error(sfparse(path, cwd=tmp_path), "too large", "8 MiB")
    finally:
        path.unlink()


def test_fifty_megabytes_of_valid_attributes(tmp_path: Path) -> None:
    path = tmp_path / "valid.sf"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("sfConfig extends {\n")
        written, index = 0, 0
        while written < FIFTY_MB:
            block = "".join(f"  attribute{n} {n};\n" for n in range(index, index + 10_000))
            handle.write(block)
            written += len(block)
            index += 10_000
        handle.write("}\n")
    try:
        assert path.stat().st_size > FIFTY_MB
        assert_clean_error(sfparse(path, cwd=tmp_path), "too large", "8 MiB")
    finally:
        path.unlink()


def test_limit_counts_included_files(tmp_path: Path) -> None:
    """Four files of 3 MB each (mostly a comment, cheap to read): under the limit alone, over it together."""
    filler = "/*" + "x" * (3 * 1024 * 1024) + "*/\n"
    for name in "abcd":
        write(tmp_path / f"{name}.sf", f"{filler}{name} 1;\n")
    main = write(
        tmp_path / "main.sf",
        "".join(f'#include "{name}.sf"\n' for name in "abcd") + "sfConfig extends { x 1; }\n",
    )
    try:
        assert_clean_error(sfparse(main, cwd=tmp_path), "c.sf:1:1: error: description too large")
    finally:
        for name in "abcd":
            (tmp_path / f"{name}.sf").unlink()


def test_include_amplification_is_bounded(tmp_path: Path) -> None:
    """Tiny files including each other ten times per level: 10**8 attributes from 1 KB.

    Each include is read once and then copied; the copies must count against the size limit
    (as if the text had been read again), or memory explodes.
    """
    write(tmp_path / "x0.sf", " ".join(f"v{i} {i};" for i in range(10)) + "\n")
    for level in range(1, 8):
        write(
            tmp_path / f"x{level}.sf",
            "".join(f'c{i} extends DATA {{ #include "x{level - 1}.sf" }}\n' for i in range(10)),
        )
    main = write(tmp_path / "main.sf", 'sfConfig extends DATA { #include "x7.sf" }\n')
    assert_clean_error(sfparse(main, cwd=tmp_path))


def test_extends_amplification_is_bounded(tmp_path: Path) -> None:
    """'Billion laughs' with prototypes: nine levels of ten copies, 10**9 attributes from 1.5 KB."""
    lines = ["L0 extends DATA { " + " ".join(f"x{i} {i};" for i in range(10)) + " }"]
    for level in range(1, 9):
        lines.append(
            f"L{level} extends DATA {{ "
            + " ".join(f"c{i} extends L{level - 1};" for i in range(10))
            + " }"
        )
    lines.append("sfConfig extends L8;")
    path = write(tmp_path / "laugh.sf", "\n".join(lines) + "\n")
    assert_clean_error(sfparse(path, cwd=tmp_path))


def test_many_mistakes_are_capped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mistakes.sf",
        "sfConfig extends {\n" + "".join(f"  a{n} extends ;\n" for n in range(20_000)) + "}\n",
    )
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run, "mistakes.sf:2:")
    assert 1 <= len(run.errors()) <= 10


# ---- long lines ----------------------------------------------------------------------------


def test_hundred_thousand_character_string(tmp_path: Path) -> None:
    path = write(tmp_path / "long.sf", 'sfConfig extends { s "' + "x" * 100_000 + '"; }\n')
    run = sfparse(path, cwd=tmp_path)
    assert_bounded(run)
    assert run.code == 0, run.err[:2000]
    assert run.out == 's "' + "x" * 100_000 + '";\n'


def test_hundred_thousand_character_line_of_attributes(tmp_path: Path) -> None:
    attributes = " ".join(f"a{n} {n};" for n in range(12_000))
    assert len(attributes) > 100_000
    path = write(tmp_path / "long.sf", "sfConfig extends { " + attributes + " }\n")
    run = sfparse(path, cwd=tmp_path)
    assert_bounded(run)
    assert run.code == 0, run.err[:2000]
    lines = run.out.splitlines()
    assert len(lines) == 12_000 and lines[0] == "a0 0;" and lines[-1] == "a11999 11999;"


def test_error_on_a_hundred_thousand_character_line_is_readable(tmp_path: Path) -> None:
    """An unterminated 100,000-character string: the message shows the place, not the whole line."""
    path = write(tmp_path / "long.sf", 'sfConfig extends { s "' + "x" * 100_000 + "; }\n")
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run, "long.sf:1:22: error: unterminated string")
    assert len(run.err) < 2_000, f"{len(run.err)} characters of error output for one mistake"


# ---- files that are not plain description files ----------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.sf", "")
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run, "sfConfig", "during the sfConfig phase")
    assert "empty.sf" in run.errors()[0], "the message names the file that has no sfConfig"


def test_directory_as_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.sf"
    folder.mkdir()
    run = sfparse(folder, cwd=tmp_path)
    assert_clean_error(run, "is a directory")


def test_missing_file(tmp_path: Path) -> None:
    assert_clean_error(sfparse("nowhere.sf", cwd=tmp_path), "nowhere.sf", "no such file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.sf", "sfConfig extends { a 1; }\n")
    path.chmod(0)
    assert_clean_error(sfparse(path, cwd=tmp_path), "secret.sf", "Permission denied")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_path_that_fails_to_read(tmp_path: Path) -> None:
    """/proc/self/mem exists, is a regular file, and reading it fails (EIO) even for root."""
    assert_clean_error(sfparse("/proc/self/mem", cwd=tmp_path), "cannot read /proc/self/mem")


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "one.sf").symlink_to("two.sf")
    (tmp_path / "two.sf").symlink_to("one.sf")
    assert_clean_error(sfparse("one.sf", cwd=tmp_path), "one.sf")


def test_fifo_as_file_does_not_hang(tmp_path: Path) -> None:
    """A named pipe nobody writes to: opening it would block forever."""
    fifo = tmp_path / "pipe.sf"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert_clean_error(sfparse(fifo, cwd=tmp_path), "pipe.sf")


def test_endless_device_as_file_does_not_hang(tmp_path: Path) -> None:
    """/dev/zero never ends: reading it whole would exhaust memory."""
    assert_clean_error(sfparse("/dev/zero", cwd=tmp_path), "/dev/zero")


# ---- includes ------------------------------------------------------------------------------


def test_include_cycle(tmp_path: Path) -> None:
    write(tmp_path / "a.sf", '#include "b.sf"\nsfConfig extends { x 1; }\n')
    write(tmp_path / "b.sf", '#include "a.sf"\ny 2;\n')
    run = sfparse("a.sf", cwd=tmp_path)
    assert_clean_error(run, "include cycle: a.sf -> b.sf -> a.sf")
    assert len(run.errors()) == 1, run.err


def test_file_including_itself(tmp_path: Path) -> None:
    write(tmp_path / "self.sf", '#include "self.sf"\nsfConfig extends { x 1; }\n')
    run = sfparse("self.sf", cwd=tmp_path)
    assert_clean_error(run, "self.sf:1:1: error: include cycle: self.sf -> self.sf")
    assert len(run.errors()) == 1, f"one mistake, one message:\n{run.err}"


def test_include_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    write(tmp_path / "main.sf", '#include "lib"\nsfConfig extends { x 1; }\n')
    run = sfparse("main.sf", cwd=tmp_path)
    assert_clean_error(run, "main.sf:1:1: error: ", '"lib"')
    assert len(run.errors()) == 1, f"one mistake, one message:\n{run.err}"


def test_include_of_a_fifo_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.sf")
    write(tmp_path / "main.sf", '#include "pipe.sf"\nsfConfig extends { x 1; }\n')
    assert_clean_error(sfparse("main.sf", cwd=tmp_path), "pipe.sf")


def test_include_of_an_endless_device_does_not_hang(tmp_path: Path) -> None:
    write(tmp_path / "main.sf", '#include "/dev/zero"\nsfConfig extends { x 1; }\n')
    assert_clean_error(sfparse("main.sf", cwd=tmp_path), "/dev/zero")


def test_include_of_a_binary_file(tmp_path: Path) -> None:
    (tmp_path / "blob.sf").write_bytes(bytes(range(256)) * 64)
    write(tmp_path / "main.sf", '#include "blob.sf"\nsfConfig extends { x 1; }\n')
    assert_clean_error(sfparse("main.sf", cwd=tmp_path), "blob.sf", "binary")


# ---- links and prototypes ------------------------------------------------------------------

CHAIN = 5_000


def test_five_thousand_chained_links(tmp_path: Path) -> None:
    """a0 a1; a1 a2; … a5000 42: either every link resolves to 42, or one clean message."""
    body = "".join(f"  a{n} a{n + 1};\n" for n in range(CHAIN)) + f"  a{CHAIN} 42;\n"
    path = write(tmp_path / "chain.sf", "sfConfig extends {\n" + body + "}\n")
    run = sfparse(path, cwd=tmp_path)
    assert_result_or_clean_error(run)
    if run.code == 0:
        assert run.out.splitlines()[0] == "a0 42;"
    else:
        assert len(run.errors()) == 1, f"one long chain, one message; got {len(run.errors())}"


def test_five_thousand_chained_links_closing_a_cycle(tmp_path: Path) -> None:
    body = "".join(f"  a{n} a{n + 1};\n" for n in range(CHAIN)) + f"  a{CHAIN} a0;\n"
    path = write(tmp_path / "cycle.sf", "sfConfig extends {\n" + body + "}\n")
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run)
    assert len(run.errors()) == 1, f"one cycle, one message; got {len(run.errors())}"


def test_five_thousand_chained_prototypes(tmp_path: Path) -> None:
    body = "".join(f"t{n} extends t{n + 1};\n" for n in range(CHAIN))
    path = write(tmp_path / "protos.sf", body + f"t{CHAIN} extends {{ x 1; }}\nsfConfig extends t0;\n")
    run = sfparse(path, cwd=tmp_path)
    assert_result_or_clean_error(run)
    if run.code == 0:
        assert run.out == "x 1;\n"
    else:
        assert "protos.sf" in run.err, "the message names the file"


def test_cyclic_attrib_links_between_components(tmp_path: Path) -> None:
    """SmartFrog's tcn19: component1:attr -> component2:attr -> component1:attr."""
    path = write(
        tmp_path / "tcn19.sf",
        '#include "org/smartfrog/components.sf"\n'
        "sfConfig extends Compound {\n"
        "    component1 extends Prim {\n"
        '        sfClass "org.smartfrog.test.system.reference.CyclicImpl";\n'
        "        attr ATTRIB component2:attr;\n"
        "    }\n"
        "    component2 extends Prim {\n"
        '        sfClass "org.smartfrog.test.system.reference.CyclicImpl";\n'
        "        attr ATTRIB component1:attr;\n"
        "    }\n"
        "}\n",
    )
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run, "tcn19.sf:5:", "cycl", "component1", "component2")
    assert len(run.errors()) == 1, run.err


def test_self_link(tmp_path: Path) -> None:
    path = write(tmp_path / "self.sf", "sfConfig extends { link link; }\n")
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run, "self.sf:1:25: error: ", "cycl")
    assert len(run.errors()) == 1


def test_mutually_extending_prototypes(tmp_path: Path) -> None:
    path = write(tmp_path / "ext.sf", "sfConfig extends {\n  a extends b;\n  b extends a;\n}\n")
    run = sfparse(path, cwd=tmp_path)
    assert_clean_error(run, "cyclic extends", "during type resolution")
    assert len(run.errors()) == 1


def test_prototype_extending_itself(tmp_path: Path) -> None:
    path = write(tmp_path / "ext.sf", "sfConfig extends {\n  link extends link;\n}\n")
    assert_clean_error(sfparse(path, cwd=tmp_path), "cyclic extends", "during type resolution")


def test_recursive_prototype(tmp_path: Path) -> None:
    """SmartFrog's tcn100: a prototype containing an attribute that extends it."""
    path = write(
        tmp_path / "rec.sf",
        "Recursion extends { recursion extends Recursion; }\nsfConfig extends Recursion;\n",
    )
    assert_clean_error(sfparse(path, cwd=tmp_path), "cycl")


@pytest.mark.parametrize("escape", ["\\uD800", "\\uDFFF", "\\uDE00\\uD83D"])
@pytest.mark.parametrize("json_form", [False, True], ids=["text", "json"])
def test_lone_surrogate_escape(tmp_path: Path, escape: str, json_form: bool) -> None:
    """A \\u escape naming half of a UTF-16 pair: printed back or refused, never an internal error."""
    path = write(tmp_path / "half.sf", f'sfConfig extends {{\n  a "{escape}";\n}}\n')
    run = sfparse(*(["--json"] if json_form else []), path, cwd=tmp_path)
    assert_result_or_clean_error(run)


def test_two_thousand_nested_includes(tmp_path: Path) -> None:
    """f0.sf includes f1.sf, which includes f2.sf, … 2,000 deep: a result, or an error that says where."""
    for n in range(2000):
        write(tmp_path / f"f{n}.sf", f'#include "f{n + 1}.sf"\nv{n} {n};\n')
    write(tmp_path / "f2000.sf", "last 1;\n")
    main = write(tmp_path / "main.sf", '#include "f0.sf"\nsfConfig extends { x last; }\n')
    run = sfparse(main, cwd=tmp_path)
    assert_result_or_clean_error(run)
    if run.code == 0:
        assert run.out == "x 1;\n"
    else:
        assert re.match(r"\S*f\d+\.sf:\d+:\d+: error: ", run.err), f"the message says where:\n{run.err}"


@pytest.mark.parametrize(
    "literal",
    [
        "3.4028235e38", "-3.4028235e38", "3.3e38", "3.5e38", "1e400", "1.4e-45", "1e-50",
        "1.7976931348623157e308D", "4.9e-324D", "1e309D", "-1e309D",
        "99999999999999999999", "9223372036854775808L", "-0.0", "-0.0D",
    ],
)  # fmt: skip
def test_extreme_numbers(tmp_path: Path, literal: str) -> None:
    """Numbers at and beyond the edges of Float, Double, Integer and Long: printed or refused."""
    path = write(tmp_path / "num.sf", f"sfConfig extends {{\n  a {literal};\n}}\n")
    for options in ((), ("--json",)):
        run = sfparse(*options, path, cwd=tmp_path)
        assert_result_or_clean_error(run)
