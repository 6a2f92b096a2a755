"""The image commands of ``tcontainer`` against a real registry: pull progress, login, save/load, inspect, prune."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from tests.integration.image._builder import build_image, busybox_entries, make_tar, reg
from tests.integration.image._registry_server import Pusher, RegistryProcess
from tests.integration.image.conftest import AUTH_PASSWORD, AUTH_USER

pytestmark = pytest.mark.registry


class CLI:
    def __init__(self, tmp: Path) -> None:
        self.root = str(tmp / "state")
        # Never the real /run/containers/0/auth.json: every credential file lives in the test's tmp.
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp / "xdg"), "TERM": "xterm"}
        self.env.pop("REGISTRY_AUTH_FILE", None)
        self.env["DOCKER_CONFIG"] = str(tmp / "docker-config")
        self.auth_file = tmp / "xdg" / "containers" / "auth.json"

    def __call__(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([sys.executable, "-m", "tinycontainer", "--root", self.root, *args], input=stdin,
                              capture_output=True, env=self.env, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"tcontainer {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    def on_pty(self, *args: str) -> tuple[int, bytes]:
        """Run with stderr on a pseudo-terminal (progress bars) and stdout on a pipe."""
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "tinycontainer", "--root", self.root, *args],
                                stdout=subprocess.PIPE, stderr=slave, env=self.env)
        os.close(slave)
        chunks: list[bytes] = []
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        break
                    if not data:
                        break
                    chunks.append(data)
                elif proc.poll() is not None:
                    break
            assert proc.stdout is not None
            out = proc.stdout.read()
            assert proc.wait(timeout=30) == 0, b"".join(chunks).decode(errors="replace")
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return len(out), b"".join(chunks)


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


@pytest.fixture(scope="module")
def two_layer_ref(registry: RegistryProcess, pusher: Pusher) -> str:
    built = build_image([make_tar(busybox_entries()), make_tar([reg("etc/motd", b"cli\n", uid=7, gid=8)])])
    pusher.image("cli/two", built, "v1")
    return f"{registry.host}/cli/two:v1"


def test_pull_progress_on_a_terminal(cli: CLI, two_layer_ref: str) -> None:
    _out_len, screen = cli.on_pty("pull", two_layer_ref)
    text = screen.decode()
    assert "\x1b[3A" in text  # redrawn in place: cursor up over 2 layers + the total line
    assert text.count("Pull complete") >= 2 and "Total:" in text
    assert "MB" in text or "kB" in text
    # A second pull: every layer already exists.
    _out_len, screen = cli.on_pty("pull", two_layer_ref)
    assert screen.decode().count("Already exists") >= 2


def test_pull_plain_and_quiet(cli: CLI, two_layer_ref: str) -> None:
    first = cli("pull", two_layer_ref)
    lines = first.stderr.decode().splitlines()
    assert lines[0] == f"Pulling {two_layer_ref}"
    assert sum("Pull complete" in line for line in lines) == 2 and "\x1b" not in first.stderr.decode()
    assert lines[-1].startswith("Digest: sha256:")
    image_id = first.stdout.decode().strip()
    assert image_id.startswith("sha256:")
    quiet = cli("pull", "-q", two_layer_ref)
    assert quiet.stderr == b"" and quiet.stdout.decode().strip() == image_id


def test_login_logout_with_htpasswd(
    cli: CLI, registry: RegistryProcess, auth_registry: RegistryProcess, pusher: Pusher
) -> None:
    pusher.image("cli/private", build_image([make_tar([reg("p", b"private")])]), "1")
    ref = f"{auth_registry.host}/cli/private:1"
    denied = cli("pull", ref, check=False)
    assert denied.returncode == 1 and b"authentication required" in denied.stderr

    wrong = cli("login", "-u", AUTH_USER, "--password-stdin", auth_registry.host, stdin=b"not-it\n", check=False)
    assert wrong.returncode == 1 and b"wrong username or password" in wrong.stderr
    assert not cli.auth_file.exists()

    ok = cli("login", "-u", AUTH_USER, "--password-stdin", auth_registry.host, stdin=AUTH_PASSWORD.encode() + b"\n")
    assert b"Login Succeeded" in ok.stdout
    assert AUTH_PASSWORD.encode() not in ok.stdout + ok.stderr
    assert stat.S_IMODE(os.stat(cli.auth_file).st_mode) == 0o600
    assert list(json.loads(cli.auth_file.read_text())["auths"]) == [auth_registry.host]
    assert cli("pull", "-q", ref).stdout.startswith(b"sha256:")

    # podman and skopeo read the same file.
    inspect = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"], capture_output=True,
                             env=cli.env, timeout=60, check=False)
    assert inspect.returncode == 0, inspect.stderr

    assert b"Removed login credentials" in cli("logout", auth_registry.host).stdout
    assert cli("logout", auth_registry.host, check=False).returncode == 1
    assert json.loads(cli.auth_file.read_text())["auths"] == {}
    cli("rmi", ref)
    assert cli("pull", ref, check=False).returncode == 1


def test_login_needs_a_password_source(cli: CLI, auth_registry: RegistryProcess) -> None:
    result = cli("login", "-u", AUTH_USER, auth_registry.host, stdin=b"", check=False)
    assert result.returncode != 0 and b"--password-stdin" in result.stderr


def test_save_load_inspect_prune(cli: CLI, two_layer_ref: str, tmp_path: Path) -> None:
    image_id = cli("pull", "-q", two_layer_ref).stdout.decode().strip()
    info = json.loads(cli("image", "inspect", two_layer_ref).stdout)[0]
    assert info["Id"] == image_id and info["RepoTags"] == [two_layer_ref]
    assert len(info["Layers"]) == 2 and info["Size"] > 0 and info["Config"]["WorkingDir"] == "/tmp"

    archive = tmp_path / "two.tar"
    cli("save", "-o", str(archive), two_layer_ref)
    with tarfile.open(archive) as tar:
        assert {"oci-layout", "index.json", "manifest.json"} <= set(tar.getnames())
    piped = cli("save", two_layer_ref).stdout  # to stdout when it is not a terminal
    assert piped == archive.read_bytes()

    cli("rmi", two_layer_ref)
    assert cli("image", "prune", "-f").stdout.decode().startswith("Total reclaimed space:")
    assert cli("images", "-q").stdout == b""
    loaded = cli("load", "-i", str(archive))
    assert loaded.stdout.decode() == f"Loaded image: {two_layer_ref}\n"
    assert cli("images", "-q", "--no-trunc").stdout.decode().strip() == image_id
    # From stdin too, into another state root.
    other = CLI(tmp_path / "other")
    assert other("load", stdin=archive.read_bytes()).stdout.decode() == f"Loaded image: {two_layer_ref}\n"

    # skopeo reads what save wrote, both as an OCI archive and as a docker archive.
    compressed = [layer["Digest"] for layer in info["Layers"]]
    for transport, layers in (("oci-archive", compressed), ("docker-archive", info["RootFS"]["Layers"])):
        peer = subprocess.run(["skopeo", "inspect", f"{transport}:{archive}"], capture_output=True, timeout=60,
                              check=False)
        assert peer.returncode == 0, peer.stderr
        # skopeo's docker-archive source presents layers uncompressed, by diff_id.
        assert json.loads(peer.stdout)["Layers"] == layers, transport

    pruned = cli("image", "prune", "-a", "-f").stdout.decode()
    assert f"deleted: {image_id}" in pruned
    assert cli("images", "-q").stdout == b""
    assert os.listdir(os.path.join(cli.root, "images", "blobs", "sha256")) == []
