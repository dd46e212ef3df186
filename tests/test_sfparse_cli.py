"""``sfparse`` as a user runs it: options, exit codes, the JSON form, include search order."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sfpy.language import load
from sfpy.language.unparse import from_json, to_sf

TIMEOUT = 30


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


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SFPY_PATH"}
    env.update(extra)
    return env


def sfparse(
    *args: object,
    cwd: Path,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*(command or SFPARSE), *(str(a) for a in args)],
        cwd=cwd,
        env=clean_env() if env is None else env,
        stdin=subprocess.DEVNULL if input is None else None,
        input=input,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- usage -------------------------------------------------------------------------------------


def test_console_script_is_installed() -> None:
    assert SFPARSE[0] != sys.executable, "the sfparse console script is not installed (pip install -e .)"


def test_help(tmp_path: Path) -> None:
    result = sfparse("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: sfparse ")
    for option in ("-I DIR", "--json", "--tree", "--verbose", "--version", "FILE"):
        assert option in result.stdout
    assert result.stderr == ""


def test_no_arguments_is_a_usage_error(tmp_path: Path) -> None:
    result = sfparse(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: sfparse ")
    assert "sfparse: error: the following arguments are required: FILE" in result.stderr


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends { a 1; }\n")
    result = sfparse("--no-such-option", "t.sf", cwd=tmp_path)
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_python_dash_m_works(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends { a 1; }\n")
    result = sfparse("t.sf", cwd=tmp_path, command=[sys.executable, "-m", "sfpy.cli.sfparse"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "a 1;\n", "")


def test_version(tmp_path: Path) -> None:
    """``--version`` names the command and the installed sfpy's version, and does nothing else."""
    from importlib.metadata import version

    result = sfparse("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"sfparse {version('sfpy')}\n", "")
    # even with a file named: nothing is parsed
    write(tmp_path / "t.sf", "sfConfig extends { a missing; }\n")
    assert sfparse("--version", "t.sf", cwd=tmp_path).returncode == 0


def test_version_is_on_every_command(tmp_path: Path) -> None:
    from importlib.metadata import version

    for command in ("sfparse", "sfrun"):
        beside = Path(sys.executable).parent / command
        argv = [str(beside)] if beside.is_file() else [sys.executable, "-m", f"sfpy.cli.{command}"]
        result = sfparse("--version", cwd=tmp_path, command=argv)
        assert (result.returncode, result.stdout) == (0, f"{command} {version('sfpy')}\n"), result.stderr


# ---- output and exit codes ------------------------------------------------------------------------


def test_prints_the_resolved_sfconfig(tmp_path: Path) -> None:
    write(
        tmp_path / "t.sf",
        "Base extends { port 80; host \"localhost\"; }\n"
        "sfConfig extends Base {\n  port 8080L;\n  url (\"http://\" ++ host);\n  ratio 1.5D;\n}\n",
    )
    result = sfparse("t.sf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == 'port 8080L;\nhost "localhost";\nurl "http://localhost";\nratio 1.5D;\n'


def test_a_misspelled_attribute_is_warned_about_and_still_prints(tmp_path: Path) -> None:
    write(
        tmp_path / "typo.sf",
        '#include "org/smartfrog/components.sf"\n'
        '#include "org/smartfrog/services/shellscript/components.sf"\n'
        'sfConfig extends Compound {\n  s extends Script { terminateScrpit "rm -f x"; }\n}\n',
    )
    result = sfparse("--tree", "typo.sf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "s: org.smartfrog.services.shellscript.SFScriptImpl" in result.stdout
    assert "typo.sf:4:" in result.stderr and "warning:" in result.stderr
    assert "'terminateScrpit'" in result.stderr and "did you mean terminateScript?" in result.stderr


def test_description_error_exits_3_with_nothing_on_stdout(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends {\n  a extends ;\n}\n")
    result = sfparse("t.sf", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("t.sf:2:13: error: ")
    assert result.stderr.splitlines()[1:3] == ["  2 |   a extends ;", "    |             ^"]


def test_resolution_error_exits_3(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends {\n  a missing;\n}\n")
    result = sfparse("t.sf", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("t.sf:2:5: error: ")
    assert result.stderr.rstrip().endswith("in sfConfig:a, during link resolution")


def test_missing_file_exits_3(tmp_path: Path) -> None:
    result = sfparse("absent.sf", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == ""
    assert "absent.sf" in result.stderr and "error:" in result.stderr


def test_json_error_exits_3_with_nothing_on_stdout(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends { a missing; }\n")
    result = sfparse("--json", "t.sf", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == ""


def test_verbose_reports_timings_on_stderr(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends { a 1; }\n")
    quiet = sfparse("t.sf", cwd=tmp_path)
    verbose = sfparse("--verbose", "t.sf", cwd=tmp_path)
    assert verbose.returncode == 0
    assert verbose.stdout == quiet.stdout == "a 1;\n"
    assert re.search(r"parsed in \d+(\.\d+)? ms", verbose.stderr), verbose.stderr
    assert re.search(r"resolved in \d+(\.\d+)? ms", verbose.stderr), verbose.stderr
    assert "t.sf" in verbose.stderr
    assert quiet.stderr == ""


def test_short_verbose_option(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends { a 1; }\n")
    assert "parsed in" in sfparse("-v", "t.sf", cwd=tmp_path).stderr


def test_closed_stdout_is_not_a_traceback(tmp_path: Path) -> None:
    """``sfparse big.sf | head -1``: the reader goes away; sfparse ends quietly."""
    write(
        tmp_path / "big.sf",
        "sfConfig extends {\n" + "".join(f"  a{n} {n};\n" for n in range(100_000)) + "}\n",
    )
    proc = subprocess.Popen(
        [*SFPARSE, "big.sf"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"a0 0;\n"
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=TIMEOUT) in (0, 1, -13)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


# ---- the JSON form (docs/json-form.md) -------------------------------------------------------------

JSON_SAMPLE = """\
sfConfig extends {
  i 42;
  l 240L;
  f 1.5;
  g 2.0f;
  d 1.5D;
  b true;
  s "text\\n";
  n NULL;
  bytes #HEX#AB34#;
  v [|1, "a", [|2L|]|];
  w [1, 2];
  [sfFinal, mine] tagged 1;
  lazy LAZY PARENT:i;
  opt LAZY OPTIONAL (3) nothing;
  data extends DATA { x 1; }
  sub extends { y i; }
}
"""

JSON_EXPECTED = {
    "sfpy": 1,
    "description": {
        "$": "Component",
        "eager": True,
        "attributes": [
            {"name": "i", "value": 42},
            {"name": "l", "value": {"$": "Long", "value": 240}},
            {"name": "f", "value": 1.5},
            {"name": "g", "value": 2.0},
            {"name": "d", "value": {"$": "Double", "value": 1.5}},
            {"name": "b", "value": True},
            {"name": "s", "value": "text\n"},
            {"name": "n", "value": None},
            {"name": "bytes", "value": {"$": "ByteArray", "base64": "qzQ="}},
            {"name": "v", "value": [1, "a", [{"$": "Long", "value": 2}]]},
            {"name": "w", "value": [1, 2]},
            {"name": "tagged", "value": 1, "tags": ["mine", "sfFinal"]},
            {
                "name": "lazy",
                "value": {"$": "Reference", "parts": [["PARENT"], ["HERE", "i"]], "lazy": True},
            },
            {
                "name": "opt",
                "value": {
                    "$": "Reference",
                    "parts": [["ATTRIB", "nothing"]],
                    "lazy": True,
                    "optional": True,
                    "default": 3,
                },
            },
            {
                "name": "data",
                "value": {"$": "Component", "eager": False, "attributes": [{"name": "x", "value": 1}]},
            },
            {
                "name": "sub",
                "value": {"$": "Component", "eager": True, "attributes": [{"name": "y", "value": 42}]},
            },
        ],
    },
}


def test_json_output_is_the_documented_form(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", JSON_SAMPLE)
    result = sfparse("--json", "t.sf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.endswith("}\n") and result.stdout.count("\n") == 1
    document = json.loads(result.stdout)
    assert document == JSON_EXPECTED
    # Integer and Float stay apart in the text itself: 2.0 is written with its fraction.
    assert re.search(r'"name":\s*"g",\s*"value":\s*2\.0\s*}', result.stdout), result.stdout


def test_json_output_reads_back_to_the_description(tmp_path: Path) -> None:
    path = write(tmp_path / "t.sf", JSON_SAMPLE)
    result = sfparse("--json", "t.sf", cwd=tmp_path)
    assert from_json(result.stdout) == load(str(path))
    assert to_sf(from_json(result.stdout)) == sfparse("t.sf", cwd=tmp_path).stdout


KINDS = {"Component", "Long", "Double", "Float", "TBD", "ByteArray", "Reference", "Apply", "Assert"}
PART_KINDS = {"ATTRIB", "HERE", "PARENT", "ROOT", "THIS", "HOST", "PROCESS", "PROPERTY",
              "IPROPERTY", "ENVPROPERTY", "IENVPROPERTY", "CONSTANT"}  # fmt: skip


def check_value(value: Any, where: str) -> None:
    """Every value is one of the forms docs/json-form.md lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, f"{where}[{index}]")
        return
    assert isinstance(value, dict) and value.get("$") in KINDS, f"{where}: {value!r}"
    kind = value["$"]
    if kind == "Component":
        check_component(value, where)
    elif kind in ("Long",):
        assert set(value) == {"$", "value"} and type(value["value"]) is int, where
    elif kind in ("Double", "Float"):
        assert set(value) == {"$", "value"}, where
        assert isinstance(value["value"], float) or value["value"] in ("NaN", "Infinity", "-Infinity")
    elif kind == "ByteArray":
        assert set(value) == {"$", "base64"}, where
    elif kind == "Reference":
        assert set(value) <= {"$", "parts", "lazy", "data", "optional", "default"}, where
        for part in value["parts"]:
            assert part[0] in PART_KINDS and len(part) in (1, 2), f"{where}: {part}"
    elif kind in ("Apply", "Assert"):
        assert set(value) <= {"$", "lazy", "data", "description"}, where
        check_component(value["description"], f"{where}.description")


def check_component(cd: dict, where: str) -> None:
    assert set(cd) <= {"$", "eager", "attributes", "prototypes"}, where
    assert isinstance(cd["eager"], bool)
    names = [a["name"] for a in cd["attributes"]]
    assert len(names) == len(set(names)), f"{where}: duplicate names"
    for attribute in cd["attributes"]:
        assert set(attribute) <= {"name", "value", "tags"}, where
        if "tags" in attribute:
            assert attribute["tags"] == sorted(attribute["tags"])
        check_value(attribute["value"], f"{where}.{attribute['name']}")


def test_json_of_a_compound_with_the_library(tmp_path: Path) -> None:
    write(
        tmp_path / "t.sf",
        '#include "org/smartfrog/components.sf"\n'
        "sfConfig extends Compound {\n"
        '  web extends Prim { sfClass "org.smartfrog.sfcore.prim.PrimImpl"; port 8080; }\n'
        '  db extends Prim { sfClass "org.smartfrog.sfcore.prim.PrimImpl"; size 10L; host LAZY PARENT:web:port; }\n'
        "}\n",
    )
    result = sfparse("--json", "t.sf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"sfpy", "description"} and document["sfpy"] == 1
    check_component(document["description"], "$")
    names = [a["name"] for a in document["description"]["attributes"]]
    assert "sfClass" in names and names.index("web") < names.index("db")


# ---- include search order ------------------------------------------------------------------------


def marker(folder: Path, name: str, label: str) -> None:
    write(folder / name, f'where "{label}";\n')


def test_include_search_order(tmp_path: Path) -> None:
    """The including file's folder, then each -I in order, then SFPY_PATH in order."""
    site, one, two, env1, env2, elsewhere = (
        tmp_path / n for n in ("site", "one", "two", "env1", "env2", "elsewhere")
    )
    for folder, label in ((site, "site"), (one, "one"), (two, "two"), (env1, "env1"), (env2, "env2")):
        marker(folder, "lib/which.sf", label)
    main = write(site / "main.sf", '#include "lib/which.sf"\nsfConfig extends { w where; }\n')
    elsewhere.mkdir()
    env = clean_env(SFPY_PATH=os.pathsep.join([str(env1), str(env2)]))
    args = ("-I", one, "-I", two, main)
    for expected in ("site", "one", "two", "env1", "env2"):
        result = sfparse(*args, cwd=elsewhere, env=env)
        assert (result.returncode, result.stdout) == (0, f'w "{expected}";\n'), result.stderr
        (tmp_path / expected / "lib" / "which.sf").unlink()
    result = sfparse(*args, cwd=elsewhere, env=env)
    assert result.returncode == 3
    assert '"lib/which.sf" not found' in result.stderr


def test_relative_to_the_including_file_not_the_main_file(tmp_path: Path) -> None:
    """A nested include is looked up beside the file that includes it first."""
    marker(tmp_path / "app", "common.sf", "main's folder")
    marker(tmp_path / "app" / "parts", "common.sf", "the including file's folder")
    write(tmp_path / "app" / "parts" / "part.sf", '#include "common.sf"\n')
    write(tmp_path / "app" / "main.sf", '#include "parts/part.sf"\nsfConfig extends { w where; }\n')
    result = sfparse("app/main.sf", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, 'w "the including file\'s folder";\n'), result.stderr


def test_current_directory_is_not_searched(tmp_path: Path) -> None:
    marker(tmp_path, "lib.sf", "cwd")
    write(tmp_path / "site" / "main.sf", '#include "lib.sf"\nsfConfig extends { w where; }\n')
    result = sfparse("site/main.sf", cwd=tmp_path)
    assert result.returncode == 3
    assert '"lib.sf" not found' in result.stderr


def test_relative_include_dir_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    marker(tmp_path / "libs", "lib.sf", "libs")
    write(tmp_path / "site" / "main.sf", '#include "lib.sf"\nsfConfig extends { w where; }\n')
    result = sfparse("-I", "libs", "site/main.sf", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, 'w "libs";\n'), result.stderr


def test_sfpy_path_comes_before_the_shipped_library(tmp_path: Path) -> None:
    """A file in SFPY_PATH shadows sfpy's own description of the same name; without it, sfpy's is used."""
    main = write(
        tmp_path / "main.sf",
        '#include "org/smartfrog/version.sf"\nsfConfig extends { v Version:name; }\n',
    )
    shadow = tmp_path / "env"
    write(shadow / "org" / "smartfrog" / "version.sf", 'Version extends DATA { name "shadowed"; }\n')
    shipped = sfparse(main, cwd=tmp_path)
    assert (shipped.returncode, shipped.stdout) == (0, 'v "SmartFrog";\n'), shipped.stderr
    shadowed = sfparse(main, cwd=tmp_path, env=clean_env(SFPY_PATH=str(shadow)))
    assert (shadowed.returncode, shadowed.stdout) == (0, 'v "shadowed";\n'), shadowed.stderr
    by_option = sfparse("-I", shadow, main, cwd=tmp_path)
    assert by_option.stdout == 'v "shadowed";\n'


def test_include_dir_comes_before_sfpy_path(tmp_path: Path) -> None:
    marker(tmp_path / "opt", "lib.sf", "-I")
    marker(tmp_path / "env", "lib.sf", "SFPY_PATH")
    main = write(tmp_path / "site" / "main.sf", '#include "lib.sf"\nsfConfig extends { w where; }\n')
    env = clean_env(SFPY_PATH=str(tmp_path / "env"))
    assert sfparse("-I", tmp_path / "opt", main, cwd=tmp_path, env=env).stdout == 'w "-I";\n'
    assert sfparse(main, cwd=tmp_path, env=env).stdout == 'w "SFPY_PATH";\n'


@pytest.mark.parametrize("name", ["org/smartfrog/components.sf", "/org/smartfrog/components.sf"])
def test_shipped_library_from_any_directory(tmp_path: Path, name: str) -> None:
    """sfpy's own descriptions are found wherever the file and the working directory are."""
    site = tmp_path / "deep" / "site"
    write(
        site / "main.sf",
        f'#include "{name}"\nsfConfig extends Compound {{\n'
        '  web extends Prim { sfClass "org.smartfrog.sfcore.prim.PrimImpl"; port 8080; }\n}\n',
    )
    cwd = tmp_path / "other"
    cwd.mkdir()
    result = sfparse(site / "main.sf", cwd=cwd)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("sfClass ") for line in lines), result.stdout
    assert "web extends  {" in lines
    assert "  port 8080;" in lines


def test_include_not_found_lists_the_search_path(tmp_path: Path) -> None:
    write(tmp_path / "main.sf", '#include "nowhere.sf"\nsfConfig extends { a 1; }\n')
    env = clean_env(SFPY_PATH=str(tmp_path / "env"))
    result = sfparse("-I", "first", "-I", "second", "main.sf", cwd=tmp_path, env=env)
    assert result.returncode == 3
    first_line = result.stderr.splitlines()[0]
    assert first_line == (
        'main.sf:1:1: error: include file "nowhere.sf" not found (searched the including '
        "file's folder, first, second, SFPY_PATH, sfpy's descriptions)"
    )


# ---- the component tree ---------------------------------------------------------------------------

TREE_SITE = """\
#include "org/smartfrog/components.sf"
#include "org/smartfrog/sfcore/workflow/combinators/sequence.sf"
#include "org/smartfrog/services/shellscript/components.sf"
Template extends LAZY Compound { hidden extends Script; }
sfConfig extends Compound {
  port 8080;
  settings extends DATA { size 10; }
  template Template;
  web extends Script { startScript "true"; }
  steps extends Sequence {
    first extends Script { startScript "true"; }
    second extends Compound { leaf extends Prim { sfClass "org.smartfrog.sfcore.prim.PrimImpl"; } }
  }
}
"""

TREE_EXPECTED = """\
sfConfig: org.smartfrog.sfcore.compound.CompoundImpl
  web: org.smartfrog.services.shellscript.SFScriptImpl
  steps: org.smartfrog.sfcore.workflow.combinators.Sequence
    first: org.smartfrog.services.shellscript.SFScriptImpl
    second: org.smartfrog.sfcore.compound.CompoundImpl
      leaf: org.smartfrog.sfcore.prim.PrimImpl
"""


def test_tree_prints_components_and_their_classes_only(tmp_path: Path) -> None:
    """Components nested by indentation; values, DATA, LAZY templates and schemas left out."""
    write(tmp_path / "t.sf", TREE_SITE)
    full = sfparse("t.sf", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    assert "scriptSchema" in full.stdout and "port 8080;" in full.stdout  # there to be hidden
    result = sfparse("--tree", "t.sf", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == TREE_EXPECTED


def test_tree_of_a_description_without_sfclass(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends { a 1; b extends { c 2; } }\n")
    result = sfparse("--tree", "t.sf", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "sfConfig: (no sfClass)\n"), result.stderr


def test_tree_of_a_wrong_description_exits_3(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends { a missing; }\n")
    result = sfparse("--tree", "t.sf", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (3, "")
    assert "unresolved reference missing" in result.stderr


def test_tree_and_json_together_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / "t.sf", "sfConfig extends { a 1; }\n")
    result = sfparse("--tree", "--json", "t.sf", cwd=tmp_path)
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


# ---- standard input -------------------------------------------------------------------------------


def test_dash_reads_the_description_from_standard_input(tmp_path: Path) -> None:
    text = "Base extends { port 80; }\nsfConfig extends Base { url (\"http://h:\" ++ port); }\n"
    write(tmp_path / "t.sf", text)
    from_file = sfparse("t.sf", cwd=tmp_path)
    result = sfparse("-", cwd=tmp_path, input=text)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == from_file.stdout == 'port 80;\nurl "http://h:80";\n'
    assert sfparse("--tree", "-", cwd=tmp_path, input=TREE_SITE).stdout == TREE_EXPECTED


def test_standard_input_includes_are_relative_to_the_working_directory(tmp_path: Path) -> None:
    marker(tmp_path / "work" / "lib", "which.sf", "cwd")
    marker(tmp_path / "elsewhere" / "lib", "which.sf", "elsewhere")
    text = '#include "lib/which.sf"\nsfConfig extends { w where; }\n'
    result = sfparse("-", cwd=tmp_path / "work", input=text)
    assert (result.returncode, result.stdout) == (0, 'w "cwd";\n'), result.stderr
    by_option = sfparse("-I", tmp_path / "elsewhere", "-", cwd=tmp_path, input=text)
    assert (by_option.returncode, by_option.stdout) == (0, 'w "elsewhere";\n'), by_option.stderr


def test_standard_input_errors_name_stdin_and_show_the_line(tmp_path: Path) -> None:
    syntax = sfparse("-", cwd=tmp_path, input="sfConfig extends {\n  a extends ;\n}\n")
    assert syntax.returncode == 3 and syntax.stdout == ""
    assert syntax.stderr.startswith("<stdin>:2:13: error: ")
    assert syntax.stderr.splitlines()[1:3] == ["  2 |   a extends ;", "    |             ^"]
    resolution = sfparse("-", cwd=tmp_path, input="sfConfig extends {\n  a missing;\n}\n")
    assert resolution.returncode == 3
    assert resolution.stderr.startswith("<stdin>:2:5: error: unresolved reference missing")
    assert resolution.stderr.splitlines()[1] == "  2 |   a missing;"


def test_standard_input_that_is_not_utf8_exits_3(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SFPARSE, "-"], cwd=tmp_path, env=clean_env(), input=b"sfConfig extends { a \xff; }",
        capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 3 and result.stdout == b""
    assert b"not UTF-8" in result.stderr and b"Traceback" not in result.stderr


def test_empty_standard_input_is_an_empty_description(tmp_path: Path) -> None:
    result = sfparse("-", cwd=tmp_path, input="")
    file_result = sfparse(write(tmp_path / "empty.sf", ""), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (file_result.returncode, file_result.stdout)
