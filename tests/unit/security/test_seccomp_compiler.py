"""The pure-Python seccomp compiler, checked by running its programs in a classic-BPF interpreter."""

from __future__ import annotations

import itertools

import pytest
from tests.unit.security import secbpf_vm as vm

from tinycontainer import oci
from tinycontainer._errors import SpecError, UnsupportedError
from tinycontainer.linux import seccomp
from tinycontainer.linux.seccomp import _bpf as B
from tinycontainer.linux.seccomp import _tables as T

U64 = (1 << 64) - 1
EPERM = vm.RET_ERRNO | 1


def profile(
    *rules: oci.Syscall, default: str = "SCMP_ACT_ERRNO", arches: list[str] | None = None, **kw: object
) -> oci.Seccomp:
    return oci.Seccomp(
        default_action=default,
        architectures=arches if arches is not None else ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        syscalls=list(rules),
        **kw,  # type: ignore[arg-type]
    )


def allow(*names: str, args: list[oci.SyscallArg] | None = None) -> oci.Syscall:
    return oci.Syscall(names=list(names), action="SCMP_ACT_ALLOW", args=args)


def arg(index: int, op: str, value: int, value_two: int | None = None) -> oci.SyscallArg:
    return oci.SyscallArg(index=index, op=f"SCMP_CMP_{op}", value=value, value_two=value_two)


def program(p: oci.Seccomp) -> bytes:
    return seccomp.compile_filter(p).program


# --- architectures -------------------------------------------------------------------------


def test_native_i386_and_x32_are_dispatched_on_their_own_tables() -> None:
    prog = program(profile(allow("getpid")))
    assert vm.run(prog, T.X86_64["getpid"]) == vm.RET_ALLOW
    assert vm.run(prog, T.I386["getpid"], vm.AUDIT_ARCH_I386) == vm.RET_ALLOW
    assert vm.run(prog, T.X32["getpid"]) == vm.RET_ALLOW
    # the same number means another syscall on another arch: 39 is getpid on x86_64, mkdir on i386
    assert T.I386["mkdir"] == T.X86_64["getpid"]
    assert vm.run(prog, T.X86_64["getpid"], vm.AUDIT_ARCH_I386) == EPERM
    assert vm.run(prog, T.X86_64["mkdir"]) == EPERM


def test_unlisted_arches_are_killed() -> None:
    prog = program(profile(allow("getpid"), arches=["SCMP_ARCH_X86_64"]))
    assert vm.run(prog, T.X86_64["getpid"]) == vm.RET_ALLOW
    assert vm.run(prog, T.I386["getpid"], vm.AUDIT_ARCH_I386) == vm.RET_KILL_PROCESS
    assert vm.run(prog, T.X32["getpid"]) == vm.RET_KILL_PROCESS  # x32 is not x86_64 just because arch matches
    assert vm.run(prog, 0xFFFFFFFF) == vm.RET_KILL_PROCESS
    assert vm.run(prog, T.X86_64["getpid"], vm.AUDIT_ARCH_AARCH64) == vm.RET_KILL_PROCESS


def test_native_arch_is_always_included_and_foreign_arches_are_ignored() -> None:
    for arches in ([], ["SCMP_ARCH_AARCH64", "SCMP_ARCH_S390X"], None):
        p = profile(allow("getpid"), arches=arches)
        if arches is None:
            p.architectures = None
        prog = program(p)
        assert vm.run(prog, T.X86_64["getpid"]) == vm.RET_ALLOW
        assert vm.run(prog, T.I386["getpid"], vm.AUDIT_ARCH_I386) == vm.RET_KILL_PROCESS


def test_unknown_arch_name_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as info:
        seccomp.compile_filter(profile(arches=["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]))
    assert info.value.field == "linux.seccomp.architectures[1]"


# --- actions and defaults ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "errno_ret", "expected"),
    [
        ("SCMP_ACT_KILL", None, vm.RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", None, vm.RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", None, vm.RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", None, vm.RET_TRAP),
        ("SCMP_ACT_ERRNO", None, vm.RET_ERRNO | 1),
        ("SCMP_ACT_ERRNO", 38, vm.RET_ERRNO | 38),
        ("SCMP_ACT_ERRNO", 0, vm.RET_ERRNO),
        ("SCMP_ACT_TRACE", None, vm.RET_TRACE | 1),
        ("SCMP_ACT_TRACE", 77, vm.RET_TRACE | 77),
        ("SCMP_ACT_LOG", None, vm.RET_LOG),
        ("SCMP_ACT_ALLOW", None, vm.RET_ALLOW),
    ],
)
def test_actions(action: str, errno_ret: int | None, expected: int) -> None:
    rule = oci.Syscall(names=["mkdir"], action=action, errno_ret=errno_ret)
    prog = program(profile(rule, default="SCMP_ACT_ALLOW"))
    assert vm.run(prog, T.X86_64["mkdir"]) == expected
    assert vm.run(prog, T.I386["mkdir"], vm.AUDIT_ARCH_I386) == expected
    assert vm.run(prog, T.X86_64["rmdir"]) == vm.RET_ALLOW
    prog = program(oci.Seccomp(default_action=action, default_errno_ret=errno_ret))
    assert vm.run(prog, T.X86_64["rmdir"]) == expected


def test_default_errno_ret() -> None:
    prog = program(profile(allow("read"), default_errno_ret=38))
    assert vm.run(prog, T.X86_64["mkdir"]) == vm.RET_ERRNO | 38


def test_notify_is_unsupported() -> None:
    with pytest.raises(UnsupportedError):
        seccomp.compile_filter(profile(oci.Syscall(names=["mkdir"], action="SCMP_ACT_NOTIFY")))


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (oci.Syscall(names=["read"], action="SCMP_ACT_ALLOW", errno_ret=1), "linux.seccomp.syscalls[0].action"),
        (oci.Syscall(names=["read"], action="SCMP_ACT_ERRNO", errno_ret=5000), "linux.seccomp.syscalls[0].action"),
        (oci.Syscall(names=["read"], action="SCMP_ACT_BOGUS"), "linux.seccomp.syscalls[0].action"),
        (allow("read", args=[arg(6, "EQ", 1)]), "linux.seccomp.syscalls[0].args[0].index"),
        (allow("read", args=[arg(0, "EQ", 1), arg(1, "XX", 1)]), "linux.seccomp.syscalls[0].args[1].op"),
        (allow("read", args=[arg(0, "EQ", 1 << 64)]), "linux.seccomp.syscalls[0].args[0].value"),
    ],
)
def test_bad_rules_name_the_field(rule: oci.Syscall, field: str) -> None:
    with pytest.raises(SpecError) as info:
        seccomp.compile_filter(profile(rule))
    assert info.value.field == field


def test_flags() -> None:
    p = profile(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"])
    assert seccomp.filter_flags(p) == 7
    assert seccomp.compile_filter(p).flags == 7
    with pytest.raises(SpecError):
        seccomp.filter_flags(profile(flags=["SECCOMP_FILTER_FLAG_NONSENSE"]))
    with pytest.raises(UnsupportedError):
        seccomp.filter_flags(profile(flags=["SECCOMP_FILTER_FLAG_NEW_LISTENER"]))


def test_unknown_names_are_skipped_and_reported() -> None:
    compiled = seccomp.compile_filter(profile(allow("getpid", "no_such_call", "riscv_hwprobe"), allow("no_such_call")))
    assert compiled.unknown_syscalls == ("no_such_call", "riscv_hwprobe")
    assert vm.run(compiled.program, T.X86_64["getpid"]) == vm.RET_ALLOW


def test_arch_specific_names_resolve_where_they_exist() -> None:
    prog = program(profile(allow("chown32", "arch_prctl")))
    assert vm.run(prog, T.I386["chown32"], vm.AUDIT_ARCH_I386) == vm.RET_ALLOW
    assert vm.run(prog, T.X86_64["arch_prctl"]) == vm.RET_ALLOW
    assert "chown32" not in T.X86_64


def test_newer_syscalls_are_in_the_tables() -> None:
    expected = {"clone3": 435, "close_range": 436, "openat2": 437, "faccessat2": 439, "mount_setattr": 442,
                "landlock_create_ruleset": 444, "futex_waitv": 449, "cachestat": 451, "fchmodat2": 452,
                "futex_wake": 454, "statmount": 457, "listmount": 458, "lsm_list_modules": 461, "mseal": 462,
                "setxattrat": 463, "removexattrat": 466, "open_tree_attr": 467}  # fmt: skip
    for name, nr in expected.items():
        assert T.X86_64[name] == nr
        assert T.I386[name] == nr
        assert T.X32[name] == nr | vm.X32_BIT
    assert T.X86_64["map_shadow_stack"] == 453
    assert "map_shadow_stack" not in T.I386


# --- rule semantics ------------------------------------------------------------------------


def test_args_in_one_rule_are_anded() -> None:
    prog = program(profile(allow("mmap", args=[arg(0, "EQ", 1), arg(2, "EQ", 3)])))
    assert vm.run(prog, T.X86_64["mmap"], args=(1, 0, 3)) == vm.RET_ALLOW
    assert vm.run(prog, T.X86_64["mmap"], args=(1, 0, 4)) == EPERM
    assert vm.run(prog, T.X86_64["mmap"], args=(2, 0, 3)) == EPERM


def test_two_checks_on_one_argument_are_ored_like_runc() -> None:
    prog = program(profile(allow("personality", args=[arg(0, "EQ", 8), arg(0, "EQ", 0)])))
    assert vm.run(prog, T.X86_64["personality"], args=(8,)) == vm.RET_ALLOW
    assert vm.run(prog, T.X86_64["personality"], args=(0,)) == vm.RET_ALLOW
    assert vm.run(prog, T.X86_64["personality"], args=(9,)) == EPERM


def test_rules_for_one_syscall_are_ored_and_conditional_rules_come_first() -> None:
    deny = oci.Syscall(
        names=["socket"], action="SCMP_ACT_ERRNO", errno_ret=22, args=[arg(0, "EQ", 16), arg(2, "EQ", 9)]
    )
    prog = program(profile(allow("socket"), deny))
    assert vm.run(prog, T.X86_64["socket"], args=(16, 3, 9)) == vm.RET_ERRNO | 22
    assert vm.run(prog, T.X86_64["socket"], args=(16, 3, 0)) == vm.RET_ALLOW
    assert vm.run(prog, T.X86_64["socket"], args=(2, 1, 0)) == vm.RET_ALLOW
    first = oci.Syscall(names=["socket"], action="SCMP_ACT_ERRNO", errno_ret=5, args=[arg(0, "GT", 10)])
    second = oci.Syscall(names=["socket"], action="SCMP_ACT_ERRNO", errno_ret=6, args=[arg(0, "GT", 5)])
    prog = program(profile(first, second))
    assert vm.run(prog, T.X86_64["socket"], args=(11,)) == vm.RET_ERRNO | 5
    assert vm.run(prog, T.X86_64["socket"], args=(6,)) == vm.RET_ERRNO | 6
    assert vm.run(prog, T.X86_64["socket"], args=(1,)) == EPERM


# --- 64-bit compares -----------------------------------------------------------------------

BOUNDARY = [
    0,
    1,
    5,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
    1 << 32,
    (1 << 32) + 1,
    (1 << 32) + 5,
    (5 << 32) + 1,
    (5 << 32) + 0xFFFFFFFF,
    1 << 63,
    U64 - 1,
    U64,
    -1,
    -100,
    -(1 << 63),
]


def _reference(op: str, a: int, v: int, v2: int) -> bool:
    a &= U64
    v &= U64
    v2 &= U64
    return {
        "EQ": a == v,
        "NE": a != v,
        "LT": a < v,
        "LE": a <= v,
        "GT": a > v,
        "GE": a >= v,
        "MASKED_EQ": a & v == v2,
    }[op]


def _arg_values(v: int) -> list[int]:
    v &= U64
    near = [v - 1, v, v + 1, v ^ (1 << 32), v ^ 1, v & 0xFFFFFFFF, v & ~0xFFFFFFFF, (v << 32) & U64]
    return sorted({x & U64 for x in near + BOUNDARY})


@pytest.mark.parametrize("op", ["EQ", "NE", "LT", "LE", "GT", "GE"])
def test_every_compare_at_64_bit_boundaries(op: str) -> None:
    for index, value in itertools.product((0, 3, 5), BOUNDARY):
        prog = program(profile(allow("ioctl", args=[arg(index, op, value)])))
        for a in _arg_values(value):
            args = [0] * 6
            args[index] = a
            want = vm.RET_ALLOW if _reference(op, a, value, 0) else EPERM
            assert vm.run(prog, T.X86_64["ioctl"], args=tuple(args)) == want, (op, index, hex(value & U64), hex(a))
            # i386 syscalls see only the low half: the high half (garbage here) must not matter
            want32 = vm.RET_ALLOW if _reference(op, a & 0xFFFFFFFF, value, 0) else EPERM
            garbage = tuple(x | (0xDEAD << 40) for x in args)
            assert vm.run(prog, T.I386["ioctl"], vm.AUDIT_ARCH_I386, garbage) == want32, (op, hex(value), hex(a))


MASKS = [
    (0x7E020000, 0),
    (0xFF, 0x12),
    (0xFFFFFFFF00000000, 5 << 32),
    (U64, 1 << 40),
    ((1 << 32) | 1, 1),
    (0, 0),
    (0, 1 << 33),
]


@pytest.mark.parametrize(("mask", "datum"), MASKS)
def test_masked_eq_at_64_bit_boundaries(mask: int, datum: int) -> None:
    prog = program(profile(allow("clone", args=[arg(1, "MASKED_EQ", mask, datum)])))
    for a in sorted({*_arg_values(mask), *_arg_values(datum), 0x10000011, 0x20000000, 0x11 | (5 << 32)}):
        want = vm.RET_ALLOW if _reference("MASKED_EQ", a, mask, datum) else EPERM
        assert vm.run(prog, T.X86_64["clone"], args=(0, a)) == want, (hex(mask), hex(datum), hex(a))
        want32 = vm.RET_ALLOW if _reference("MASKED_EQ", a & 0xFFFFFFFF, mask, datum) else EPERM
        assert vm.run(prog, T.I386["clone"], vm.AUDIT_ARCH_I386, (0, a | (7 << 36))) == want32


def test_negative_profile_values_are_twos_complement() -> None:
    prog = program(profile(allow("openat", args=[arg(0, "EQ", -100)])))  # AT_FDCWD
    assert vm.run(prog, T.X86_64["openat"], args=(-100,)) == vm.RET_ALLOW
    assert vm.run(prog, T.X86_64["openat"], args=(0xFFFFFF9C,)) == EPERM
    assert vm.run(prog, T.X86_64["openat"], args=(3,)) == EPERM


# --- long programs -------------------------------------------------------------------------


def test_far_conditional_targets_get_trampolines() -> None:
    far, near = B.Label("far"), B.Label("near")
    items: list[B.Item] = [B.ld_abs(16), B.jump(B.JEQ, 1, far, None), B.jump(B.JEQ, 2, None, far)]
    items += [B.jump(B.JEQ, 3, near, far), near]
    items += [B.ret(0x7FFF0000 + 1 + (i % 2)) for i in range(600)]  # both targets far apart
    items += [far, B.ret(vm.RET_ERRNO | 7)]
    prog = B.assemble(items)
    assert vm.run(prog, 0, args=(1,)) == vm.RET_ERRNO | 7
    assert vm.run(prog, 0, args=(2,)) == vm.RET_ERRNO | 7  # jf of the second jump is far
    assert vm.run(prog, 0, args=(3,)) == vm.RET_ERRNO | 7  # falls through to the far jf of the third
    assert vm.run(prog, 0, args=(3 << 32,)) == vm.RET_ERRNO | 7
    items2: list[B.Item] = [B.ld_abs(16), B.jump(B.JEQ, 5, far2 := B.Label(), far3 := B.Label())]
    items2 += [B.ret(1)] * 300 + [far2, B.ret(2)] + [B.ret(3)] * 300 + [far3, B.ret(4)]
    prog2 = B.assemble(items2)
    assert vm.run(prog2, 0, args=(5,)) == 2
    assert vm.run(prog2, 0, args=(6,)) == 4


def test_long_rule_chains_and_many_syscalls() -> None:
    values = list(range(0, 150 * 3, 3))
    rules = [allow("personality", args=[arg(0, "EQ", v)]) for v in values]
    others = [n for n in sorted(T.X86_64) if n not in ("personality", "read")]
    errnos = [oci.Syscall(names=[n], action="SCMP_ACT_ERRNO", errno_ret=i % 40 + 2) for i, n in enumerate(others)]
    compiled = seccomp.compile_filter(profile(*rules, *errnos, allow("read", args=[arg(1, "GT", 1 << 40)])))
    assert compiled.instructions > 1000
    nr = T.X86_64["personality"]
    for v in values[:5] + values[-5:] + [values[70]]:
        assert vm.run(compiled.program, nr, args=(v,)) == vm.RET_ALLOW
        assert vm.run(compiled.program, nr, args=(v + 1,)) == EPERM
        assert vm.run(compiled.program, nr, args=(v | 1 << 32,)) == EPERM
        assert vm.run(compiled.program, T.I386["personality"], vm.AUDIT_ARCH_I386, (v,)) == vm.RET_ALLOW
    for i, name in enumerate(others):
        assert vm.run(compiled.program, T.X86_64[name]) == vm.RET_ERRNO | (i % 40 + 2), name
    assert vm.run(compiled.program, T.X86_64["read"], args=(0, (1 << 40) + 1)) == vm.RET_ALLOW
    assert vm.run(compiled.program, T.X86_64["read"], args=(0, 1 << 40)) == EPERM


def test_too_long_programs_are_refused() -> None:
    rules = [allow("personality", args=[arg(0, "NE", v), arg(1, "NE", v)]) for v in range(1000)]
    with pytest.raises(SpecError, match="at most 4096"):
        seccomp.compile_filter(profile(*rules))


def test_every_number_gets_the_right_answer() -> None:
    """Sweep every syscall number of every arch through a profile with mixed outcomes."""
    names = sorted(T.X86_64)[::3]
    prog = program(profile(allow(*names), oci.Syscall(names=names[::5], action="SCMP_ACT_LOG")))
    for arch, table, token in (("x86_64", T.X86_64, vm.AUDIT_ARCH_X86_64), ("i386", T.I386, vm.AUDIT_ARCH_I386)):
        by_nr = {nr: name for name, nr in table.items()}
        for nr in range(600):
            name = by_nr.get(nr)
            want = vm.RET_ALLOW if name in names else EPERM
            assert vm.run(prog, nr, token) == want, (arch, nr, name)
    for name, nr in T.X32.items():
        want = vm.RET_ALLOW if name in names else EPERM
        assert vm.run(prog, nr) == want, ("x32", name)
