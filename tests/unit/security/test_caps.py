"""Capability names, masks and the order of the calls that set them (through a recording fake)."""

from __future__ import annotations

import pytest

from tinycontainer import oci
from tinycontainer._errors import KernelError, SpecError
from tinycontainer.linux import _consts as C
from tinycontainer.linux import caps
from tinycontainer.oci._defaults import DOCKER_CAPABILITIES


class FakeSys:
    """Records prctl/capset; PR_CAPBSET_READ fails with EINVAL past ``last``."""

    def __init__(self, last: int = 40) -> None:
        self.last = last
        self.calls: list[tuple[object, ...]] = []

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        if option == C.PR_CAPBSET_READ:
            if arg2 > self.last:
                raise KernelError(22, "prctl")
            return 1
        self.calls.append(("prctl", option, arg2, arg3))
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self.calls.append(("capset", effective, permitted, inheritable))


def test_numbers() -> None:
    assert caps.CAP_NUMBERS["CAP_CHOWN"] == 0
    assert caps.CAP_NUMBERS["CAP_SETPCAP"] == 8
    assert caps.CAP_NUMBERS["CAP_SYS_ADMIN"] == 21
    assert caps.CAP_NUMBERS["CAP_AUDIT_READ"] == 37
    assert caps.CAP_NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert caps.CAP_LAST_KNOWN == 40
    assert caps.cap_name(39) == "CAP_BPF"
    with pytest.raises(ValueError):
        caps.cap_name(41)


def test_docker_mask() -> None:
    assert caps.mask_from_names(DOCKER_CAPABILITIES) == 0xA80425FB == caps.DOCKER_MASK
    assert caps.names_from_mask(0xA80425FB) == sorted(DOCKER_CAPABILITIES, key=caps.CAP_NUMBERS.__getitem__)
    assert caps.mask_from_names([]) == 0


def test_unknown_capability_is_refused_with_its_field() -> None:
    with pytest.raises(SpecError) as info:
        caps.mask_from_names(["CAP_CHOWN", "CAP_TEST"], field="process.capabilities.bounding")
    assert info.value.field == "process.capabilities.bounding[1]"
    assert "CAP_TEST" in str(info.value)
    with pytest.raises(SpecError):
        caps.mask_from_names(["chown"])  # config.json needs the exact spelling


@pytest.mark.parametrize("spelling", ["CAP_NET_ADMIN", "net_admin", "NET_ADMIN", "cap_net_admin", " Net_Admin "])
def test_cli_spellings(spelling: str) -> None:
    assert caps.normalize_name(spelling) == "CAP_NET_ADMIN"
    assert caps.cap_number(spelling) == 12


def test_cli_unknown_name() -> None:
    with pytest.raises(SpecError):
        caps.normalize_name("net_admins")


def test_last_cap_reads_proc() -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert caps.last_cap() == int(f.read())


def test_last_cap_probes_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caps, "_CAP_LAST_CAP", "/nonexistent/cap_last_cap")
    assert caps.last_cap(FakeSys(last=37)) == 37  # type: ignore[arg-type]
    assert caps.last_cap() == caps.CAP_LAST_KNOWN


def test_drop_bounding_set_drops_everything_not_kept() -> None:
    fake = FakeSys()
    caps.drop_bounding_set(caps.DOCKER_MASK, fake, last=42)  # type: ignore[arg-type]
    dropped = [c[2] for c in fake.calls if c[1] == C.PR_CAPBSET_DROP]
    assert dropped == [n for n in range(43) if not caps.DOCKER_MASK >> n & 1]
    assert 21 in dropped and 41 in dropped and 42 in dropped and 0 not in dropped


def test_apply_capabilities_order_and_masks() -> None:
    fake = FakeSys()
    spec = oci.Capabilities(
        bounding=["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        effective=["CAP_NET_BIND_SERVICE"],
        permitted=["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        inheritable=["CAP_NET_BIND_SERVICE"],
        ambient=["CAP_NET_BIND_SERVICE"],
    )
    caps.apply_capabilities(spec, fake)  # type: ignore[arg-type]
    assert fake.calls == [
        ("capset", 1 << 10, 1 << 10 | 1 << 5, 1 << 10),
        ("prctl", C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_CLEAR_ALL, 0),
        ("prctl", C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_RAISE, 10),
    ]


def test_no_capabilities_object_means_none() -> None:
    fake = FakeSys()
    caps.apply_capabilities(None, fake)  # type: ignore[arg-type]
    assert fake.calls == [("capset", 0, 0, 0), ("prctl", C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_CLEAR_ALL, 0)]


def test_impossible_sets_are_spec_errors() -> None:
    with pytest.raises(SpecError) as info:
        caps.apply_capabilities(oci.Capabilities(effective=["CAP_KILL"], permitted=[]), FakeSys())  # type: ignore[arg-type]
    assert info.value.field == "process.capabilities.effective"


def test_ambient_without_inheritable_is_left_out() -> None:
    # `runc spec` writes ambient caps that are not inheritable; runc warns and carries on.
    wanted = oci.Capabilities(
        permitted=["CAP_KILL", "CAP_CHOWN"], inheritable=["CAP_CHOWN"], ambient=["CAP_KILL", "CAP_CHOWN"]
    )
    _eff, _perm, _inh, amb = caps.capability_masks(wanted)
    assert amb == 1 << 0  # CAP_CHOWN only
    assert caps.unraisable_ambient(wanted) == ["CAP_KILL"]
