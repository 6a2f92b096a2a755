"""The v2 device filter program, run by a small interpreter of the opcodes it uses."""

from __future__ import annotations

import struct

import pytest

from tinycontainer import oci
from tinycontainer._errors import SpecError
from tinycontainer.linux import cgroups
from tinycontainer.linux.cgroups import _v2_devices as D

BLOCK, CHAR = 1, 2
MKNOD, READ, WRITE = 1, 2, 4


def run(prog: bytes, kind: int, access: int, major: int, minor: int) -> int:
    """Execute the filter on one request (ctx = access << 16 | type, major, minor)."""
    ctx = [access << 16 | kind, major, minor]
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack("<BBhi", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    for _ in range(10_000):
        code, regs_byte, off, imm = insns[pc]
        dst, src = regs_byte & 0xF, regs_byte >> 4
        imm32 = imm & 0xFFFFFFFF
        pc += 1
        if code == D._LDX_MEM_W:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = ctx[off // 4]
        elif code == D._ALU32_AND_K:
            regs[dst] = (regs[dst] & imm32) & 0xFFFFFFFF
        elif code == D._ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm32
        elif code == D._ALU32_MOV_K:
            regs[dst] = imm32
        elif code == D._ALU32_MOV_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == D._JMP32_JNE_K:
            pc += off if regs[dst] & 0xFFFFFFFF != imm32 else 0
        elif code == D._JMP32_JNE_X:
            pc += off if regs[dst] & 0xFFFFFFFF != regs[src] & 0xFFFFFFFF else 0
        elif code == D._JMP32_JEQ_K:
            pc += off if regs[dst] & 0xFFFFFFFF == imm32 else 0
        elif code == D._EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("no exit")


def rule(
    allow: bool, kind: str | None = None, major: int | None = None, minor: int | None = None, access: str = "rwm"
) -> oci.DeviceRule:
    return oci.DeviceRule(allow=allow, type=kind, major=major, minor=minor, access=access)


RUNC_LIKE = [rule(False), *cgroups.DEFAULT_ALLOWED_DEVICES]


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        ((CHAR, READ | WRITE, 1, 3), 1),  # /dev/null
        ((CHAR, READ, 1, 9), 1),  # /dev/urandom
        ((CHAR, READ | WRITE, 136, 7), 1),  # /dev/pts/7
        ((CHAR, MKNOD, 4, 1), 1),  # mknod of any char device
        ((BLOCK, MKNOD, 8, 0), 1),
        ((BLOCK, READ, 8, 0), 0),  # /dev/sda
        ((CHAR, READ | WRITE, 10, 229), 0),  # /dev/fuse
        ((CHAR, READ | MKNOD, 4, 1), 0),  # mknod is allowed, read of tty1 is not: all bits needed
    ],
)
def test_default_allow_list(request_: tuple[int, int, int, int], allowed: int) -> None:
    assert run(D.program(RUNC_LIKE), *request_) == allowed


def test_no_deny_all_keeps_the_inherited_allow_all() -> None:
    prog = D.program([rule(False, "c", 1, 7, "w")])
    assert run(prog, BLOCK, READ, 8, 0) == 1
    assert run(prog, CHAR, READ, 1, 7) == 1
    assert run(prog, CHAR, READ | WRITE, 1, 7) == 0  # a deny takes away any requested bit


def test_later_rules_win_and_a_resets() -> None:
    prog = D.program([rule(True, "c", 1, 3), rule(False), rule(True, "c", 1, 5), rule(False, "c", 1, 5, "w")])
    assert run(prog, CHAR, READ, 1, 3) == 0  # dropped by the later deny-all
    assert run(prog, CHAR, READ, 1, 5) == 1
    assert run(prog, CHAR, WRITE, 1, 5) == 0
    allow_all = D.program([rule(False), rule(True)])
    assert run(allow_all, BLOCK, READ | WRITE | MKNOD, 8, 0) == 1


def test_partial_a_rule_covers_both_types() -> None:
    prog = D.program([rule(False), rule(True, "a", 7, None, "r")])
    assert run(prog, BLOCK, READ, 7, 3) == 1
    assert run(prog, CHAR, READ, 7, 3) == 1
    assert run(prog, CHAR, WRITE, 7, 3) == 0


def test_large_device_numbers_compare_as_u32() -> None:
    prog = D.program([rule(False), rule(True, "c", 0xFFFFFFF0, 1)])
    assert run(prog, CHAR, READ, 0xFFFFFFF0, 1) == 1
    assert run(prog, CHAR, READ, 0xFFFFFFF1, 1) == 0


def test_bad_rule_names_the_field() -> None:
    with pytest.raises(SpecError) as info:
        D.program([rule(True, "z")])
    assert info.value.field == "linux.resources.devices[0].type"
