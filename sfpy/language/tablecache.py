"""A per-user cache of lark's analysed grammar (the LALR tables), so that a fresh process —
every ``sfstart``, ``sfparse``, ``sfrun`` — does not rebuild them (0.1–0.3 s on a 2-core
machine, a third of a small command's start-up).

Why not lark's own ``cache=True``: it writes a pickle into the shared temporary folder, and
loading a pickle another user could have written there runs that user's code — in a daemon
running as root. This cache is made safe in three ways:

* **Its own folder**, ``$XDG_CACHE_HOME/sfpy`` or ``~/.cache/sfpy`` (``SFPY_CACHE_DIR``
  overrides), created with mode 0700. The folder and the file are used only when they belong
  to the current user and nobody else may write them (checked with ``lstat``/``fstat``; the
  file is opened with ``O_NOFOLLOW``); a root whose ``HOME`` is another user's never reads it.
* **No code in the file**: the tables are plain data (dicts, lists, strings, numbers); the
  two class references lark would pickle are taken out before saving and put back after
  loading, and the unpickler refuses every global, so even a file that was tampered with
  cannot run code — at worst it fails to load and the tables are rebuilt.
* **Keyed** by the SHA-256 of the grammar text, lark's version, Python's version and this
  format's number: a changed grammar or an upgraded lark never loads old tables. Written to
  a temporary name in the same folder and renamed, so a reader sees a whole file or none.

Any problem (no home, read-only file system, a foreign owner, a corrupt file) falls back to
building the tables, as without a cache. ``SFPY_PARSER_CACHE=off`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lark
from lark import Lark

log = logging.getLogger("sfpy.language.tablecache")

#: Bumped when what is stored changes shape.
FORMAT = 1
#: Bytes a cache file may have (the real one is about 85 kB).
MAX_BYTES = 4 * 1024 * 1024


def cache_dir() -> Path | None:
    """The folder the tables are cached in, or None when there is no usable home."""
    given = os.environ.get("SFPY_CACHE_DIR")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            return None
    return Path(base) / "sfpy"


def cache_key(grammar: str) -> str:
    """The cache file's name part for ``grammar`` with the running lark and Python."""
    digest = hashlib.sha256()
    python = "{}.{}".format(*sys.version_info[:2])
    for part in (grammar, lark.__version__, python, str(FORMAT)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def _trusted(info: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else."""
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class _DataOnly(pickle.Unpickler):
    """Unpickles plain data only: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the parser cache may hold no {module}.{name}")


def load_or_build(grammar: str, build: Callable[[], Lark], *, lexer: type,
                  transformer: Any) -> Lark:
    """The Lark for ``grammar``: from the cache when a trusted entry matches, else ``build()``
    (then saved for the next process)."""
    if os.environ.get("SFPY_PARSER_CACHE", "").lower() in ("off", "0", "no"):
        return build()
    folder = cache_dir()
    if folder is None:
        return build()
    path = folder / f"sf-tables-{cache_key(grammar)}.pickle"
    loaded = _load(folder, path, lexer, transformer)
    if loaded is not None:
        return loaded
    parser = build()
    _save(folder, path, parser)
    return parser


def _load(folder: Path, path: Path, lexer: type, transformer: Any) -> Lark | None:
    try:
        if not _trusted(os.lstat(folder)) or not stat.S_ISDIR(os.lstat(folder).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode) or not _trusted(info) or info.st_size > MAX_BYTES:
                log.debug("parser cache %s not trusted: ignored", path)
                return None
            stored = _DataOnly(io.BytesIO(stream.read())).load()
        data = stored["data"]
        data["options"]["lexer"] = lexer
        data["parser"]["lexer_conf"]["lexer_type"] = lexer
        # lark's own loader (what its cache=True uses): the tables, with our callbacks
        return Lark.__new__(Lark)._load(stored, transformer=transformer)
    except Exception as error:  # noqa: BLE001 - a bad cache only costs the rebuild
        log.debug("parser cache %s unusable (%s): rebuilding", path, error)
        return None


def _save(folder: Path, path: Path, parser: Lark) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or not _trusted(info):
            return
        from lark.grammar import Rule
        from lark.lexer import TerminalDef

        data, memo = parser.memo_serialize([TerminalDef, Rule])
        # plain data only: the transformer, the lexer class and other options given at load
        data["options"] = {name: value for name, value in data["options"].items()
                           if name not in ("transformer", "lexer", "postlex",
                                           "lexer_callbacks", "tree_class", "_plugins")}
        data["parser"]["lexer_conf"]["lexer_type"] = None
        blob = pickle.dumps({"data": data, "memo": memo}, protocol=pickle.HIGHEST_PROTOCOL)
        fd, temporary = tempfile.mkstemp(prefix=".sf-tables-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(blob)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except Exception as error:  # noqa: BLE001 - no cache: the next process builds again
        log.debug("parser cache %s not written: %s", path, error)
