"""``sfimage``: build guest images and keep them in the image store.

    sfimage build [--group NAME]... [--package PKG]... [--file SRC:DEST[:MODE]]...
                  [--ssh-key FILE]... [--root-password-hash-file FILE] [--hostname NAME]
                  [--format tar.gz|tar|img|qcow2] [--size SIZE] [--suite S] [--mirror URL] ...
    sfimage list | show KEY | get KEY | rm KEY... | import FILE | export KEY DEST | gc

``build`` prints the image's path on stdout (``--json``: key, paths, cached or not); the same
parameters a second time answer from the store at once. Exit codes as every sfpy command: 0
done, 1 failed, 2 usage.

This module stays light: a cache hit imports argparse, json, hashlib and the store, not the
engine or the command runner (docs/images.md has the measured time).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from sfpy.errors import SfpyError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: SOURCE_DATE_EPOCH when the environment gives none: builds are reproducible by default (file
#: times are clamped to it; when the image was built is in its meta.json).
DEFAULT_EPOCH = "1700000000"


class _Version(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw: Any):
        super().__init__(option_strings, dest, nargs=0, help="print sfpy's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kw: Any) -> None:
        from importlib import metadata

        try:
            version = metadata.version("sfpy")
        except metadata.PackageNotFoundError:
            from sfpy import __version__ as version
        print(f"sfimage {version}")
        parser.exit(0)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--store", metavar="DIR", help="the image store (default: the "
                        "configuration's store, else /var/lib/sfpy/images)")
    common.add_argument("--config", metavar="FILE", help="YAML configuration (default "
                        "/etc/sfpy/images.yaml when it exists)")
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    common.add_argument("--json", action="store_true", help="print data as JSON")

    parser = _Parser(prog="sfimage", description="Build guest images and keep them in the "
                     "image store.", parents=[common])
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    build = sub.add_parser("build", parents=[common], help="build an image, or take it from "
                           "the store", description="Build an image (Debian with mmdebstrap by "
                           "default), or take it from the store when the same parameters were "
                           "built before. Prints the image's path.")
    build.add_argument("--group", action="append", default=[], metavar="NAME",
                       help="a package group (base is always in); repeatable")
    build.add_argument("--package", action="append", default=[], metavar="PKG",
                       help="an extra package (or several, comma-separated); repeatable")
    build.add_argument("--file", action="append", default=[], metavar="SRC:DEST[:MODE]",
                       help="place host file SRC at DEST in the image (mode octal, default "
                       "0644); repeatable")
    build.add_argument("--ssh-key", action="append", default=[], metavar="FILE",
                       help="a public key file for root's authorized_keys; repeatable")
    build.add_argument("--root-password-hash", metavar="HASH",
                       help="root's password as a crypt hash (never a clear password); prefer "
                       "--root-password-hash-file, which keeps it out of the process list")
    build.add_argument("--root-password-hash-file", metavar="FILE",
                       help="a file holding root's crypt hash (like `mkpasswd -m yescrypt`)")
    build.add_argument("--hostname", help="the host name the image has until ip= gives one "
                       "(default: the configuration's, else sfpy-guest)")
    build.add_argument("--format", default="tar.gz", choices=("tar.gz", "tar", "img", "qcow2"))
    build.add_argument("--size", help="size of an img or qcow2 filesystem (default: what the "
                       "files need plus a quarter and 256 MiB)")
    build.add_argument("--builder", help="builder plug-in (mmdebstrap, debootstrap)")
    build.add_argument("--suite", help="distribution suite (bookworm)")
    build.add_argument("--variant", help="mmdebstrap variant (minbase)")
    build.add_argument("--architecture", help="architecture (amd64)")
    build.add_argument("--components", help="archive components, comma-separated (main)")
    build.add_argument("--mirror", help="package mirror URL")
    build.add_argument("--kernel-package", help="the kernel package (linux-image-cloud-amd64)")
    build.add_argument("--no-kernel", action="store_true", help="no kernel in the image")
    build.add_argument("--groups-dir", action="append", default=[], metavar="DIR",
                       help="also read package groups from DIR/*.yaml; repeatable")
    build.add_argument("--apt-cache", metavar="DIR", help="keep downloaded packages in DIR "
                       "between builds (default: the configuration's aptCache)")
    build.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    sub.add_parser("list", parents=[common], help="list the images in the store")
    show = sub.add_parser("show", parents=[common], help="everything about one image")
    show.add_argument("key", help="the image's key (or its first 4+ hex digits)")
    get = sub.add_parser("get", parents=[common], help="print the path of an image (or of its "
                         "kernel or ramdisk)")
    get.add_argument("key")
    get.add_argument("--what", choices=("image", "kernel", "ramdisk", "directory"),
                     default="image")
    rm = sub.add_parser("rm", parents=[common], help="remove images")
    rm.add_argument("keys", nargs="+", metavar="key")
    imp = sub.add_parser("import", parents=[common], help="put an image file in the store "
                         "(e.g. one a storage backend saved) with its origin")
    imp.add_argument("file")
    imp.add_argument("--domain", help="the domain it came from (default: from the file name "
                     "<volumeBaseName>-<domain>-<UTC time>.<ext>)")
    imp.add_argument("--volume-base-name", default="xen-domain",
                     help="the backend's volumeBaseName, to find the domain in the name")
    imp.add_argument("--host", help="the host it came from (default: this host)")
    imp.add_argument("--time", help="when it was saved (default: from the file name)")
    imp.add_argument("--kernel", help="a kernel to keep with it")
    imp.add_argument("--ramdisk", help="an initramfs to keep with it")
    imp.add_argument("--move", action="store_true", help="move the file instead of copying")
    exp = sub.add_parser("export", parents=[common], help="copy an image out of the store")
    exp.add_argument("key")
    exp.add_argument("destination", help="a file, or a directory (which also receives the "
                     "kernel and ramdisk)")
    gc = sub.add_parser("gc", parents=[common], help="remove images unused for a while, then "
                        "the least recently used above the quota")
    gc.add_argument("--unused-for", metavar="DURATION", help="e.g. 30d, 12h (default: the "
                    "configuration's unusedFor)")
    gc.add_argument("--quota", metavar="SIZE", help="e.g. 50G (default: the configuration's)")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    return parser


def _emit(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _params(args: argparse.Namespace, config: Any) -> Any:
    from sfpy.images.request import make_params

    return make_params(
        config, groups=args.group, packages=args.package, files=args.file,
        ssh_key_files=args.ssh_key, password_hash=args.root_password_hash,
        password_hash_file=args.root_password_hash_file, hostname=args.hostname,
        format=args.format, size=args.size, builder=args.builder, suite=args.suite,
        variant=args.variant, architecture=args.architecture, components=args.components,
        mirror=args.mirror, kernel_package=args.kernel_package, no_kernel=args.no_kernel,
        group_directories=args.groups_dir)


def _build(args: argparse.Namespace, config: Any, store: Any) -> int:
    from sfpy.images import builders

    params = _params(args, config)
    builder = builders.get(params.builder)
    key = params.key(builder.version)
    image = store.find(key)  # the cache-hit path: nothing heavier than the store is imported
    cached = image is not None
    if image is not None:
        store.touch(image)
    if image is None:
        from sfpy.images.build import build_image
        from sfpy.images.progress import Progress

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt  # the build removes what it made

        signal.signal(signal.SIGTERM, stop)
        progress = Progress(None, quiet=args.quiet)
        image, built = build_image(store, params, builder,
                                   apt_cache=args.apt_cache or config.apt_cache,
                                   progress=progress,
                                   source_date_epoch=os.environ.get("SOURCE_DATE_EPOCH",
                                                                    DEFAULT_EPOCH),
                                   quota=config.quota)
        cached = not built
    if args.json:
        _emit({**image.summary(), "cached": cached})
    else:
        if cached and not args.quiet:
            print(f"sfimage: image {key[:12]} is in the store", file=sys.stderr)
        print(image.path)
    return EXIT_OK


def _list(args: argparse.Namespace, store: Any) -> int:
    from sfpy.images.progress import human

    images = sorted(store.images(), key=lambda i: i.meta.get("created") or "")
    if args.json:
        _emit([i.summary() for i in images])
        return EXIT_OK
    if not images:
        print(f"no images in {store.root}", file=sys.stderr)
        return EXIT_OK
    print(f"{'KEY':<12}  {'FORMAT':<6}  {'SIZE':>10}  {'CREATED':<20}  {'LAST USED':<20}  WHAT")
    for image in images:
        summary = image.summary()
        if image.meta.get("kind") == "imported":
            origin = image.meta.get("origin") or {}
            what = f"imported from {origin.get('domain')}@{origin.get('host')}"
        else:
            groups = ",".join(summary.get("groups") or [])
            suite = image.meta.get("params", {}).get("distribution", {}).get("suite", "")
            what = f"{suite} [{groups}]"
        print(f"{image.key[:12]}  {image.format:<6}  {human(summary['bytes']):>10}  "
              f"{summary['created'] or '':<20}  {summary['lastUsed']:<20}  {what}")
    return EXIT_OK


def _show(args: argparse.Namespace, store: Any) -> int:
    image = store.resolve(args.key)
    data = {**image.summary(), "meta": image.meta}
    if args.json:
        _emit(data)
    else:
        for key in ("key", "kind", "format", "path", "kernel", "ramdisk", "bytes", "created",
                    "lastUsed"):
            print(f"{key:>10}: {data[key]}")
        if image.meta.get("origin"):
            print(f"{'origin':>10}: {json.dumps(image.meta['origin'], sort_keys=True)}")
        if image.meta.get("params"):
            print(f"{'params':>10}: {json.dumps(image.meta['params'], sort_keys=True)}")
    return EXIT_OK


def _get(args: argparse.Namespace, store: Any) -> int:
    from sfpy.images.errors import ImageError

    image = store.resolve(args.key)
    path = {"image": image.path, "kernel": image.kernel, "ramdisk": image.ramdisk,
            "directory": image.directory}[args.what]
    if path is None:
        raise ImageError(f"image {image.key[:12]} has no {args.what}")
    store.touch(image)
    if args.json:
        _emit({"key": image.key, args.what: path})
    else:
        print(path)
    return EXIT_OK


def _rm(args: argparse.Namespace, store: Any) -> int:
    from sfpy.images.errors import ImageError

    images = [store.resolve(k) for k in args.keys]
    for image in images:
        if not store.remove(image):
            raise ImageError(f"image {image.key[:12]} is being built or used: not removed")
        print(f"removed {image.key[:12]}", file=sys.stderr)
    return EXIT_OK


def _import(args: argparse.Namespace, store: Any) -> int:
    image, new = store.import_file(args.file, domain=args.domain, host=args.host,
                                   when=args.time, volume_base=args.volume_base_name,
                                   kernel=args.kernel, ramdisk=args.ramdisk, move=args.move)
    if args.json:
        _emit({**image.summary(), "new": new})
    else:
        if not new:
            print(f"sfimage: the same image is in the store already ({image.key[:12]})",
                  file=sys.stderr)
        print(image.key)
    return EXIT_OK


def _export(args: argparse.Namespace, store: Any) -> int:
    image = store.resolve(args.key)
    written = store.export(image, args.destination)
    if args.json:
        _emit({"key": image.key, "written": written})
    else:
        for path in written:
            print(path)
    return EXIT_OK


def _gc(args: argparse.Namespace, config: Any, store: Any) -> int:
    from sfpy.images.config import duration_seconds
    from sfpy.images.params import size_bytes
    from sfpy.images.progress import human

    unused = duration_seconds(args.unused_for) if args.unused_for else config.unused_for
    quota = size_bytes(args.quota) if args.quota else config.quota
    if unused is None and quota is None:
        from sfpy.images.errors import ParameterError

        raise ParameterError("gc needs --unused-for or --quota (or unusedFor/quota in the "
                             "configuration)")
    removed = store.gc(unused_for=unused, quota=quota, dry_run=args.dry_run)
    if args.json:
        _emit({"removed": removed, "dryRun": args.dry_run})
    else:
        verb = "would remove" if args.dry_run else "removed"
        for entry in removed:
            print(f"{verb} {entry['key'][:12]}  {human(entry['bytes'])}  ({entry['reason']}, "
                  f"last used {entry['lastUsed']})")
        if not removed:
            print("nothing to remove", file=sys.stderr)
    return EXIT_OK


def _main(argv: Sequence[str]) -> int:
    from sfpy.images import config as configuration
    from sfpy.images.store import Store

    args = _parser().parse_args(argv)
    config = configuration.load(args.config)
    store = Store(args.store or config.store)
    if args.command == "build":
        return _build(args, config, store)
    if args.command == "gc":
        return _gc(args, config, store)
    handlers = {"list": _list, "show": _show, "get": _get, "rm": _rm, "import": _import,
                "export": _export}
    return handlers[args.command](args, store)


def main(argv: Sequence[str] | None = None) -> int:
    """Run sfimage; errors become one line and an exit code, never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except SfpyError as error:
        print(f"sfimage: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("sfimage: interrupted (nothing was left in the store)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAILED
    except OSError as error:
        print(f"sfimage: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - the last line of defence
        if "--debug" in argv:
            import traceback

            traceback.print_exc()
        print(f"sfimage: internal error: {type(error).__name__}: {error} (run with --debug "
              "for details)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
