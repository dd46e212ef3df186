"""The language's one error type.

A :class:`DescriptionError` says what is wrong, where it was written (file, line, column),
in which phase it was found (parse, type, place, function, sfConfig, link) and, for
resolution errors, the attribute path. It prints the way compilers do::

    site.sf:12:17: error: unknown reference 'dsik' (did you mean 'disk'?)
       12 |     size PARENT:dsik:size;
          |                 ^
      in sfConfig:vm1:size, during link resolution
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from sfpy.errors import SfpyError
from sfpy.language.model import SourcePosition

PHASES = ("parse", "type", "place", "function", "sfConfig", "link")
MAX_SHOWN = 120  # characters of a source line shown under a message


class DescriptionError(SfpyError):
    """A description is wrong. Nothing built from it may be deployed (exit code 3).

    ``more`` holds further, independent mistakes found in the same run (after a syntax error
    the parser resumes at the next ``;`` or ``}``), so a user sees each mistake once.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        position: SourcePosition | None = None,
        phase: str = "parse",
        path: str | None = None,
        source_line: str | None = None,
        more: Iterable[DescriptionError] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.phase = phase
        self.path = path
        self._source_line = source_line
        self.more: list[DescriptionError] = list(more)

    @property
    def source_line(self) -> str | None:
        """The text of the line the error points at, read from the file when not given."""
        if self._source_line is None and self.position is not None:
            self._source_line = _read_line(self.position.file, self.position.line)
        return self._source_line

    def all(self) -> list[DescriptionError]:
        return [self, *self.more]

    def render_one(self) -> str:
        where = f"{self.position}: " if self.position else ""
        lines = [f"{where}error: {self.message}"]
        text = self.source_line
        if self.position is not None and text is not None:
            number = str(self.position.line)
            shown = text.rstrip("\r\n").expandtabs(1)
            caret_at = max(self.position.column - 1, 0)
            if len(shown) > MAX_SHOWN:  # a window around the caret of a very long line
                start = max(0, min(caret_at - MAX_SHOWN // 2, len(shown) - MAX_SHOWN))
                shown = ("…" if start else "") + shown[start : start + MAX_SHOWN] + "…"
                caret_at = caret_at - start + (1 if start else 0)
            lines.append(f"  {number} | {shown}")
            lines.append(f"  {' ' * len(number)} | {' ' * caret_at}^")
        context = []
        if self.path:
            context.append(f"in {self.path}")
        if self.phase != "parse":
            context.append(f"during {self.phase} resolution" if self.phase != "sfConfig" else "during the sfConfig phase")
        if context:
            lines.append("  " + ", ".join(context))
        return "\n".join(lines)

    def render(self) -> str:
        """Every mistake, each once, separated by blank lines."""
        return "\n\n".join(e.render_one() for e in self.all())

    def __str__(self) -> str:
        return self.render_one()


def _read_line(file: str, line: int) -> str | None:
    try:
        with Path(file).open(encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, start=1):
                if number == line:
                    return text
                if number > line:
                    break
    except OSError:
        return None
    return None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close candidate exists, else the empty string."""
    close = difflib.get_close_matches(name, [c for c in candidates if isinstance(c, str)], n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""
