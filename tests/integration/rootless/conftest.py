"""A throwaway unprivileged user for the rootless tests.

The module-scoped fixture creates the user (home in a temp dir), gives it a /etc/subuid and
/etc/subgid range, builds a busybox rootfs it owns, and runs ``tcontainer-oci`` as that user with
Debian's /usr/bin/python3 (the pyenv interpreter lives under /root, which is 0700) and
PYTHONPATH pointing at this checkout's src/. Teardown kills what is left of the user's
processes (by pid), removes the subid lines it added, deletes the user and the temp dir, and
checks that /etc/passwd, /etc/group, /etc/subuid and /etc/subgid are as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from tests.helpers.rootfs import build_busybox_rootfs, busybox_available

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "src"))
SYSTEM_PYTHON = "/usr/bin/python3"
SUBID_COUNT = 65536
SUBID_FILES = ("/etc/subuid", "/etc/subgid")
WATCHED = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", *SUBID_FILES)


@dataclass
class RootlessUser:
    name: str
    uid: int
    gid: int
    base: str
    home: str
    xdg: str
    rootfs: str
    subid_start: int
    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        env = [f"{k}={v}" for k, v in sorted(self.env.items())]
        return ["runuser", "-u", self.name, "--", "env", "-i", *env, *args]

    def run(
        self, *args: str, timeout: float = 60, check: bool = False, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """``args`` as the user, from its home directory."""
        # Files, not pipes: a created container inherits stdio and would hold a pipe open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            done = subprocess.run(
                self.command(*args), stdout=out, stderr=err, timeout=timeout, input=input, cwd=self.home, check=False
            )
            out.seek(0)
            err.seek(0)
            r = subprocess.CompletedProcess(done.args, done.returncode, out.read(), err.read())
        if check and r.returncode != 0:
            raise AssertionError(f"{args} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
        return r

    def oci(self, *args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        return self.run(SYSTEM_PYTHON, "-m", "tinycontainer.cli.oci", *args, timeout=timeout, check=check)

    def pids(self, grace: float = 0.0) -> list[str]:
        """The user's live processes ("pid command state"), waiting up to ``grace`` for them to go."""
        deadline = time.monotonic() + grace
        while True:
            found = []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        if os.stat(f"/proc/{entry}").st_uid != self.uid:
                            continue
                        with open(f"/proc/{entry}/stat") as f:
                            stat = f.read()
                    except OSError:
                        continue
                    state = stat.rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(f"{entry} {stat[stat.index('(') : stat.rindex(')') + 1]} {state}")
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)


def _digests() -> dict[str, str]:
    out = {}
    for path in WATCHED:
        try:
            with open(path, "rb") as f:
                out[path] = hashlib.sha256(f.read()).hexdigest()
        except OSError as exc:
            out[path] = f"error {exc.errno}"
    return out


def _free_subid_start() -> int:
    """A range that overlaps nobody's in /etc/subuid and /etc/subgid."""
    taken: list[tuple[int, int]] = []
    for path in SUBID_FILES:
        with contextlib.suppress(OSError), open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    taken.append((int(parts[1]), int(parts[1]) + int(parts[2])))
    start = 3_000_000
    while any(lo < start + SUBID_COUNT and start < hi for lo, hi in taken):
        start += SUBID_COUNT
    return start


def _append_line(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _remove_lines(path: str, prefix: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        with open(path) as f:
            lines = f.readlines()
        kept = [line for line in lines if not line.startswith(prefix)]
        if kept != lines:
            with open(path, "w") as f:
                f.writelines(kept)


def _chown_tree(path: str, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def _kill_leftovers(user: RootlessUser) -> list[str]:
    left = user.pids(grace=2.0)
    for line in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split()[0]), signal.SIGKILL)
    user.pids(grace=5.0)
    return left


@pytest.fixture(scope="module")
def rootless_user() -> Iterator[RootlessUser]:
    for tool in ("useradd", "userdel", "runuser", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install uidmap passwd util-linux)")
    if not busybox_available():
        pytest.skip("busybox-static is not installed")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"{SYSTEM_PYTHON} is needed (the pyenv interpreter is not reachable by other users)")
    before = _digests()
    name = "tcrl" + uuid.uuid4().hex[:8]
    base = tempfile.mkdtemp(prefix="tc-rootless-")
    os.chmod(base, 0o755)
    home = os.path.join(base, "home")
    # SUB_*_COUNT=0: no automatic subid allocation; the range is added (and removed) below.
    subprocess.run(
        [
            "useradd",
            "--home-dir",
            home,
            "--create-home",
            "--shell",
            "/bin/sh",
            "--user-group",
            "-K",
            "SUB_UID_COUNT=0",
            "-K",
            "SUB_GID_COUNT=0",
            "-K",
            "MAIL_DIR=/nonexistent",
            name,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    start = _free_subid_start()
    try:
        entry = pwd.getpwnam(name)
        for path in SUBID_FILES:
            _append_line(path, f"{name}:{start}:{SUBID_COUNT}\n")
        xdg = os.path.join(base, "xdg")
        os.mkdir(xdg, 0o700)
        os.chown(xdg, entry.pw_uid, entry.pw_gid)
        rootfs = build_busybox_rootfs(os.path.join(base, "rootfs"))
        _chown_tree(rootfs, entry.pw_uid, entry.pw_gid)
        user = RootlessUser(
            name=name,
            uid=entry.pw_uid,
            gid=entry.pw_gid,
            base=base,
            home=home,
            xdg=xdg,
            rootfs=rootfs,
            subid_start=start,
        )
        user.env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": home,
            "USER": name,
            "XDG_RUNTIME_DIR": xdg,
            "PYTHONPATH": SRC,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        yield user
        leftovers = _kill_leftovers(user)
        assert not leftovers, f"processes of the rootless user were left running: {leftovers}"
    finally:
        for path in SUBID_FILES:
            _remove_lines(path, f"{name}:")
        subprocess.run(["userdel", name], check=False, capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
        assert _digests() == before, "the user database was not restored"
