"""The errors of image building and the store (all :class:`sfpy.errors.SfpyError`)."""

from __future__ import annotations

from sfpy.errors import SfpyError


class ImageError(SfpyError):
    """An image could not be built, found, imported or removed; the message says why."""


class ParameterError(ImageError):
    """A parameter of an image is wrong (exit 2: a usage error)."""

    exit_code = 2
