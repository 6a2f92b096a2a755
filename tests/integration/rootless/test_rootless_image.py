"""``tcontainer pull`` and ``run IMAGE`` as an ordinary user: the store keeps verified blobs
(no overlay whiteouts, which need CAP_MKNOD), and each container runs from its own flattened
copy, owned by the user and so by root inside the user namespace."""

from __future__ import annotations

import os

import pytest
from tests.integration.image._builder import build_image, busybox_entries, chardev, directory, make_tar, reg, whiteout
from tests.integration.image._registry_server import Pusher, RegistryProcess
from tests.integration.image.conftest import pusher, registry, registry_storage  # noqa: F401 (fixtures)
from tests.integration.rootless.conftest import SYSTEM_PYTHON, RootlessUser
from tests.integration.rootless.test_rootless_cli import _no_containers_left, tcontainer

pytestmark = [pytest.mark.rootless, pytest.mark.registry]


@pytest.fixture(scope="module")
def busybox_ref(registry: RegistryProcess, pusher: Pusher) -> str:  # noqa: F811 (fixtures)
    base = [
        *busybox_entries(extra_applets=("stat", "test")),
        directory("etc"),
        reg("etc/gone", b"deleted by the next layer\n"),
        reg("bin/setuid", b"#!/bin/sh\n", 0o4755),
        directory("ro", 0o555),  # the copy must still be removable without CAP_DAC_OVERRIDE
        reg("ro/file", b"x"),
        chardev("dev/null-ish", 1, 3),  # skipped: an ordinary user cannot mknod
    ]
    top = [whiteout("etc/gone"), reg("etc/motd", b"top\n", uid=7, gid=8)]
    built = build_image([make_tar(base), make_tar(top)], config={"Env": ["PATH=/bin"]})
    pusher.image("rootless/busybox", built, "v1")
    return f"{registry.host}/rootless/busybox:v1"


def test_pull_and_run_image_as_user(rootless_user: RootlessUser, busybox_ref: str) -> None:
    user = rootless_user
    code, out, err = tcontainer(user, "pull", busybox_ref)
    assert code == 0, err
    store = os.path.join(user.home, ".local", "share", "tcontainer", "images")
    layers = os.path.join(store, "layers", "sha256")
    assert len(os.listdir(layers)) == 2
    # Blobs only: no overlay-format diff/ (its whiteouts would have needed CAP_MKNOD).
    assert not any(os.path.exists(os.path.join(layers, d, "diff")) for d in os.listdir(layers))

    code, out, err = tcontainer(user, "run", "--rm", busybox_ref, "echo", "hi")
    assert code == 0, err
    assert out == "hi\n" and "Traceback" not in err, err

    script = (
        "stat -c %u:%g /bin/busybox /etc/motd; stat -c %a /bin/setuid; "
        "test -e /etc/gone && echo gone-visible; test -e /dev/null-ish && echo device-made; echo end"
    )
    code, out, err = tcontainer(user, "run", "--rm", busybox_ref, "sh", "-c", script)
    assert code == 0, err
    # The user's files are root's inside; other owners of the image collapse to the user too.
    assert out.split() == ["0:0", "0:0", "4755", "end"], (out, err)

    # The library finds the same per-user store (nothing is pulled again: the registry is not asked).
    library = (
        "import sys, tinycontainer; r = tinycontainer.run(['cat', '/etc/motd'], "
        "spec=tinycontainer.Spec(image=sys.argv[1]), capture_output=True, text=True, timeout=30, pull=False); "
        "print(r.returncode, r.stdout.strip())"
    )
    r = user.run(SYSTEM_PYTHON, "-c", library, busybox_ref, timeout=60)
    assert r.returncode == 0 and r.stdout.decode().split() == ["0", "top"], r.stderr.decode(errors="replace")
    _no_containers_left(user)
    # --rm removed the container's copy of the image as well.
    for bundles in (os.path.join(user.xdg, "tcontainer", "bundles"), os.path.join(user.xdg, "tcontainer", "lib",
                                                                                     "bundles")):
        assert not os.path.isdir(bundles) or os.listdir(bundles) == [], os.listdir(bundles)
