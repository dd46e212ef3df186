"""ImageBuilder in a description: the image comes from the store when its key is there (no
builder runs), LAZY readers after it see its path, kernel and ramdisk in their own deploy, and
a wrong parameter fails the deployment before anything is built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sfpy.engine import Process
from sfpy.engine.errors import DeploymentError
from sfpy.images import builders
from sfpy.images import config as configuration
from sfpy.images.request import make_params
from sfpy.images.store import Store, write_meta
from sfpy.language import load


@pytest.fixture
def process():
    proc = Process("imageTest")
    yield proc
    proc.shutdown(timeout=10)


def seed(store_dir: Path, **request) -> str:
    """Publish a stand-in image under the key the request has (no builder is run)."""
    params = make_params(configuration.Config(group_directories=()), **request)
    key = params.key(builders.get(params.builder).version)
    store = Store(str(store_dir))
    work = Path(store.new_work_directory(key))
    (work / "image.img").write_bytes(b"ext4")
    (work / "kernel").write_bytes(b"k")
    (work / "ramdisk").write_bytes(b"r")
    write_meta(str(work), {"key": key, "kind": "built", "format": "img", "image": "image.img",
                           "kernel": "kernel", "ramdisk": "ramdisk"})
    store.publish(str(work), key)
    return key


def describe(tmp_path: Path, body: str) -> object:
    path = tmp_path / "app.sf"
    path.write_text('#include "org/sfpy/images/components.sf"\n' + body, encoding="utf-8")
    return load(str(path))


def test_a_description_takes_its_image_from_the_store(tmp_path: Path, process, monkeypatch):
    monkeypatch.setenv("SFPY_IMAGES_CONFIG", str(tmp_path / "images.yaml"))
    (tmp_path / "images.yaml").write_text("groupDirectories: []\n")
    key = seed(tmp_path / "store", groups=["ssh-server"], packages=["less"], format="img",
               hostname="web")

    def no_build(*args, **kwargs):
        raise AssertionError("nothing may be built on a cache hit")

    monkeypatch.setattr("sfpy.images.build.build_image", no_build)
    app = process.deploy(describe(tmp_path, f'''
sfConfig extends Compound {{
  image extends ImageBuilder {{
    groups ["ssh-server"]; packages ["less"]; hostname "web"; store "{tmp_path}/store";
  }}
  user extends Compound {{
    disk LAZY PARENT:image:path; kernel LAZY PARENT:image:kernel;
    ramdisk LAZY PARENT:image:ramdisk;
  }}
}}'''))
    image = app.sf_resolve("image")
    assert image.sf_resolve("key") == key and image.sf_resolve("cached") is True
    user = app.sf_resolve("user")
    assert user.sf_resolve("disk") == f"{tmp_path}/store/images/{key}/image.img"
    assert user.sf_resolve("kernel").endswith(f"{key}/kernel")
    assert user.sf_resolve("ramdisk").endswith(f"{key}/ramdisk")


def test_a_wrong_parameter_fails_the_deployment_naming_the_component(tmp_path: Path, process):
    with pytest.raises(DeploymentError, match=r"sfConfig:image.*no package group 'nope'"):
        process.deploy(describe(tmp_path, f'''
sfConfig extends Compound {{
  image extends ImageBuilder {{ groups ["nope"]; store "{tmp_path}/store"; }}
}}'''))
    assert not (tmp_path / "store" / "images").exists()


class SlowStandIn:
    """A builder whose build is a long command (``sleep``) through the host layer."""

    name, version, distributions = "slow-stand-in", "1", ("debian",)

    def missing(self):
        return None

    def build(self, job):
        Path(job.target).write_bytes(b"partial")
        job.run(["sleep", "60"], label="sleep").check()


def test_a_build_cancelled_by_a_timeout_leaves_nothing_in_the_store(tmp_path: Path, process,
                                                                      monkeypatch):
    import time

    monkeypatch.setenv("SFPY_IMAGES_CONFIG", str(tmp_path / "images.yaml"))
    (tmp_path / "images.yaml").write_text("groupDirectories: []\n")
    builders.register("slow-stand-in", SlowStandIn)
    began = time.monotonic()
    app = process.deploy(describe(tmp_path, f'''
#include "org/smartfrog/sfcore/workflow/combinators/timeout.sf"
sfConfig extends Compound {{
  limit extends Timeout {{
    time 2000;
    action extends ImageBuilder {{ builder "slow-stand-in"; format "tar";
      store "{tmp_path}/store"; }}
  }}
}}'''))
    assert app.wait_terminated(30), "the Timeout did not end the build"
    assert not app.termination_record.is_normal
    assert "timeout" in app.termination_record.description
    assert time.monotonic() - began < 30  # the sleep was stopped, not waited for
    store = Store(str(tmp_path / "store"))
    assert store.images() == [] and os.listdir(store.tmp_dir) == []
