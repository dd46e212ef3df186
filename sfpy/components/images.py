"""``ImageBuilder`` (``org/sfpy/images/components.sf``): the image a description boots, built
by ``sfimage``'s machinery or taken from the image store.

It does its work when it *deploys*, so that a storage backend and a domain defined after it
in the same Compound read a finished image in their own deploy::

    image extends ImageBuilder { groups ["ssh-server"]; format "img"; }
    disk extends LoopbackStorageBackend { baseImage LAZY PARENT:image:path; ... }
    vm extends XenDomain { kernel LAZY PARENT:image:kernel; ramdisk LAZY PARENT:image:ramdisk; }

Same parameters as an earlier build (the same key): the stored image at once. Otherwise the
build runs as long work (``step.blocking``: the application stays responsive, a termination
or a ``Timeout`` cancels it, and the cancelled build leaves nothing in the store). After
deploy the component has ``path``, ``kernel``, ``ramdisk``, ``key``, ``format`` and
``cached`` (true when the image came from the store). Termination leaves the image in the
store: that is what the store is for (``sfimage gc`` removes what nobody uses).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from sfpy.engine.api import EngineError, Prim
from sfpy.errors import SfpyError
from sfpy.host.work import check, current_step

_TEXT = ("hostname", "format", "size", "builder", "suite", "variant", "architecture",
         "mirror", "kernelPackage", "store", "aptCache", "rootPasswordHashFile", "configFile")
_LISTS = ("groups", "packages", "files", "sshKeys", "components", "groupDirectories")


class ImageBuilder(Prim):
    """See the module docstring."""

    declared_attributes = frozenset(
        [*_TEXT, *_LISTS, "noKernel", "path", "kernel", "ramdisk", "key", "cached",
         "terminateTimeout"])

    def _text(self, name: str) -> str | None:
        value = self.sf_resolve(name, None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise EngineError(f"{self.sf_complete_name()}:{name} must be text, not {value!r}")
        return str(value)

    def _list(self, name: str) -> list[str]:
        value = self.sf_resolve(name, None)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
            raise EngineError(f"{self.sf_complete_name()}:{name} must be a vector of strings, "
                              f"not {value!r}")
        return list(value)

    def deploy(self) -> None:
        from sfpy.images import builders
        from sfpy.images import config as configuration
        from sfpy.images.build import build_image, lookup
        from sfpy.images.progress import Progress
        from sfpy.images.request import make_params
        from sfpy.images.store import Store

        me = self.sf_complete_name()
        try:
            config = configuration.load(self._text("configFile"))
            params = make_params(
                config, groups=self._list("groups"), packages=self._list("packages"),
                files=self._list("files"), ssh_key_files=self._list("sshKeys"),
                password_hash_file=self._text("rootPasswordHashFile"),
                hostname=self._text("hostname"), format=self._text("format") or "img",
                size=self._text("size"), builder=self._text("builder"),
                suite=self._text("suite"), variant=self._text("variant"),
                architecture=self._text("architecture"),
                components=self._list("components") or None, mirror=self._text("mirror"),
                kernel_package=self._text("kernelPackage"),
                no_kernel=bool(self.sf_resolve("noKernel", False)),
                group_directories=self._list("groupDirectories"))
            builder = builders.get(params.builder)
            store = Store(self._text("store") or config.store)
            key, image = lookup(store, params, builder)
        except SfpyError as error:
            raise EngineError(f"{me}: {error}") from None
        cached = image is not None
        if image is None:
            step = current_step()
            check(step)
            progress = Progress(None, quiet=True, interval=10.0, sink=self.log.info)
            apt_cache = self._text("aptCache") or config.apt_cache
            epoch = os.environ.get("SOURCE_DATE_EPOCH", "1700000000")
            with step.blocking(f"building image {key[:12]} ({builder.name})"):
                try:
                    image, built = build_image(store, params, builder, apt_cache=apt_cache,
                                               progress=progress, source_date_epoch=epoch,
                                               quota=config.quota, stop=step.wait_cancelled)
                except SfpyError as error:
                    failure: SfpyError | None = error
                else:
                    failure = None
            check(step)  # cancelled: WorkCancelled, the build has removed what it made
            if failure is not None:
                raise EngineError(f"{me}: the image could not be built: {failure}") from None
            cached = not built
        assert image is not None
        self.log.info("image %s %s: %s", key[:12], "from the store" if cached else "built",
                      image.path)
        self.sf_replace_attribute("path", image.path)
        self.sf_replace_attribute("key", image.key)
        self.sf_replace_attribute("format", image.format)
        self.sf_replace_attribute("cached", cached)
        if image.kernel:
            self.sf_replace_attribute("kernel", image.kernel)
        if image.ramdisk:
            self.sf_replace_attribute("ramdisk", image.ramdisk)


__all__ = ["ImageBuilder"]
