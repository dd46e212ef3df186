"""The one exception root of sfpy.

Every error sfpy raises on purpose derives from :class:`SfpyError`, so a command can catch
that one class, print its message and exit with the code the error carries.
"""

from __future__ import annotations


class SfpyError(Exception):
    """Base of every error sfpy reports to a user; ``exit_code`` follows design.md §4."""

    exit_code: int = 1
