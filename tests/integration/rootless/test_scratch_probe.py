from __future__ import annotations
from tests.integration.rootless.conftest import RootlessUser, SYSTEM_PYTHON

def test_probe(rootless_user: RootlessUser) -> None:
    u = rootless_user
    for args in (["run", "-fs", u.rootfs, "--", "id", "-u"],
                 ["run", "--", "sh", "-c", "id -u; touch /x; echo w=$?"],
                 ["run", "-memlimit", "64m", "-fs", u.rootfs, "--", "true"],
                 ["run", "-net", "-fs", u.rootfs, "--", "ls", "/sys/class/net"]):
        r = u.run(SYSTEM_PYTHON, "-m", "tinycontainer", *args, timeout=60)
        print(args, r.returncode, r.stdout, r.stderr.decode()[-3000:])
    script = f"import tinycontainer as t; r=t.run(['id','-u'], spec=t.Spec(rootfs={u.rootfs!r}), capture_output=True); print(r)"
    r = u.run(SYSTEM_PYTHON, "-c", script, timeout=60)
    print("lib", r.returncode, r.stdout, r.stderr.decode()[-3000:])
    assert 0
