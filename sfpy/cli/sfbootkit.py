"""``sfpy-bootkit``: build (once) the kernel, initramfs and root filesystem guests boot with.

    sfpy-bootkit                      build into /var/cache/sfpy/bootkit/<version>, or find it
    sfpy-bootkit --cache DIR --json   the paths as one JSON object

Prints ``name path`` lines: version, directory, kernel, initrd, rootfs, image
(docs/components.md, "The boot kit"). Exit 0; 1 the kit could not be built (apt has no
package lists, no network, not allowed to write the cache).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from sfpy.cli.common import EXIT_OK, ArgumentParser, run_command
from sfpy.host import bootkit


def _main(argv: Sequence[str] | None) -> int:
    parser = ArgumentParser(prog="sfpy-bootkit", description=(
        "Build the boot kit (Debian cloud kernel, busybox initramfs and root filesystem) "
        "from Debian packages, once per version, and print where its files are."))
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help=f"cache directory (default ${bootkit.CACHE_VARIABLE} or "
                             f"{bootkit.DEFAULT_CACHE})")
    parser.add_argument("--kernel-package", default=bootkit.KERNEL_PACKAGE, metavar="PACKAGE",
                        help="the kernel package or metapackage (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="build again even if cached")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every command run while building")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    kit = bootkit.ensure(args.cache, force=args.force, kernel_package=args.kernel_package)
    if args.json:
        print(json.dumps(kit.as_dict(), sort_keys=True))
    else:
        for key in ("version", "directory", "kernel", "initrd", "rootfs", "image"):
            print(f"{key} {getattr(kit, key)}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
