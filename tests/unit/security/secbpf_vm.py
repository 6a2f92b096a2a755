"""A small classic-BPF interpreter for seccomp programs, written for the tests only.

It checks what the kernel's checker (bpf_check_classic + seccomp_check_filter) would refuse:
length, opcodes outside the seccomp subset, loads outside struct seccomp_data, jumps past the
end, and a program that can fall off its end. Then it runs the program on a seccomp_data.
"""

from __future__ import annotations

import struct

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_BIT = 0x40000000

RET_KILL_THREAD = 0x00000000
RET_KILL_PROCESS = 0x80000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

_LD_W_ABS = 0x20
_AND_K = 0x54
_JA = 0x05
_JEQ_K = 0x15
_JGT_K = 0x25
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_SECCOMP_DATA_SIZE = 64
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1


class Rejected(Exception):
    """The kernel would refuse to load this program."""


def check(program: bytes) -> list[tuple[int, int, int, int]]:
    if len(program) % 8:
        raise Rejected("length is not a multiple of 8")
    insns = [tuple(t) for t in struct.iter_unpack("<HBBI", program)]
    if not 1 <= len(insns) <= 4096:
        raise Rejected(f"{len(insns)} instructions")
    for pc, (code, jt, jf, k) in enumerate(insns):
        if code == _LD_W_ABS:
            if k % 4 or k + 4 > _SECCOMP_DATA_SIZE:
                raise Rejected(f"pc {pc}: load at {k}")
        elif code == _JA:
            if pc + 1 + k >= len(insns):
                raise Rejected(f"pc {pc}: ja past the end")
        elif code in (_JEQ_K, _JGT_K, _JGE_K, _JSET_K):
            if pc + 1 + max(jt, jf) >= len(insns):
                raise Rejected(f"pc {pc}: jump past the end")
        elif code not in (_AND_K, _RET_K):
            raise Rejected(f"pc {pc}: opcode {code:#x} not allowed")
    if insns[-1][0] != _RET_K:
        raise Rejected("the last instruction is not a return")
    return insns  # type: ignore[return-value]


def seccomp_data(nr: int, arch: int, args: tuple[int, ...] = (), ip: int = 0) -> bytes:
    full = tuple(a & _U64 for a in args) + (0,) * (6 - len(args))
    return struct.pack("<IIQ6Q", nr & _U32, arch, ip, *full)


def run(program: bytes, nr: int, arch: int = AUDIT_ARCH_X86_64, args: tuple[int, ...] = ()) -> int:
    """The filter's return value for one syscall."""
    insns = check(program)
    data = seccomp_data(nr, arch, args)
    acc = 0
    pc = 0
    steps = 0
    while True:
        steps += 1
        if steps > len(insns):  # forward-only jumps: more steps than instructions means a bug
            raise AssertionError("the program loops")
        code, jt, jf, k = insns[pc]
        if code == _LD_W_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == _AND_K:
            acc &= k
        elif code == _JA:
            pc += k
        elif code == _JEQ_K:
            pc += jt if acc == k else jf
        elif code == _JGT_K:
            pc += jt if acc > k else jf
        elif code == _JGE_K:
            pc += jt if acc >= k else jf
        elif code == _JSET_K:
            pc += jt if acc & k else jf
        elif code == _RET_K:
            return int(k)
        pc += 1


def errno_of(ret: int) -> int | None:
    return ret & 0xFFFF if ret & 0xFFFF0000 == RET_ERRNO else None
