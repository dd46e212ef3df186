"""Filesystem images on a host, written as "facts in, commands out" through a
:class:`~sfpy.host.hosts.Host` (the first operation of the host layer; storage backends are
built the same way).

:func:`ext4_image` makes a sparse file of a size and an ext4 filesystem on it, and does
nothing on a host where that is already so (it is idempotent): the facts it asks are whether
the file exists and what ``blkid`` finds on it.
"""

from __future__ import annotations

import re

from sfpy.host.hosts import Host
from sfpy.host.runner import HostError

_SIZE = re.compile(r"[1-9][0-9]*[KMGTP]?")
#: ``blkid`` exit code when it found nothing it knows on the device or file.
_BLKID_NOTHING = 2


def filesystem_type(host: Host, path: str, caller: str | None = None) -> str | None:
    """The filesystem ``blkid`` finds in ``path`` (``"ext4"``), None when it finds none."""
    result = host.probe(["blkid", "-p", "-o", "value", "-s", "TYPE", path], caller=caller)
    if result.exit_code == _BLKID_NOTHING:
        return None
    result.check()
    return result.stdout.strip() or None


def ext4_image(host: Host, path: str, size: int | str, *, label: str | None = None,
               caller: str | None = None) -> bool:
    """Make ``path`` a sparse file of ``size`` (bytes, or ``truncate``'s ``10G`` form) with an
    ext4 filesystem (labelled ``label``), unless it has one already. An existing file with no
    filesystem gets one; a file with another filesystem is refused, never overwritten.
    True when something was changed."""
    if not path.startswith("/"):
        raise HostError(f"an image path must be absolute, not {path!r}")
    text = str(size)
    if isinstance(size, bool) or not _SIZE.fullmatch(text):
        raise HostError(f"image size must be a number of bytes or like 10G, not {size!r}")
    if label is not None and (not label or len(label.encode()) > 16):
        raise HostError(f"an ext4 label has 1 to 16 bytes, not {label!r}")
    if host.exists(path):
        found = filesystem_type(host, path, caller)
        if found == "ext4":
            return False
        if found is not None:
            raise HostError(f"{path} holds a {found} filesystem: refusing to overwrite it")
    else:
        host.run(["truncate", "-s", text, path], caller=caller).check()
    command = ["mkfs.ext4", "-q", "-F"]
    if label is not None:
        command += ["-L", label]
    host.run([*command, path], label="mkfs.ext4", caller=caller).check()
    return True


__all__ = ["ext4_image", "filesystem_type"]
