"""A tiny classic-BPF assembler: instructions with symbolic forward labels -> ``struct sock_filter[]``.

Classic BPF conditional jumps carry 8-bit offsets (``jt``/``jf``, at most 255 instructions
ahead) and all jumps go forward. :func:`assemble` resolves labels and, where a conditional
target is too far, inserts an unconditional ``ja`` trampoline (32-bit offset) right after
the jump. Trampolines only ever get added, so the layout converges in a few passes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..._errors import SpecError

# linux/bpf_common.h
BPF_LD = 0x00
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_RET = 0x06
BPF_W = 0x00
BPF_ABS = 0x20
BPF_AND = 0x50
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40
BPF_K = 0x00

LD_ABS = BPF_LD | BPF_W | BPF_ABS
AND_K = BPF_ALU | BPF_AND | BPF_K
JA = BPF_JMP | BPF_JA
JEQ = BPF_JMP | BPF_JEQ | BPF_K
JGT = BPF_JMP | BPF_JGT | BPF_K
JGE = BPF_JMP | BPF_JGE | BPF_K
JSET = BPF_JMP | BPF_JSET | BPF_K
RET_K = BPF_RET | BPF_K

# include/uapi/linux/filter.h: BPF_MAXINSNS; the kernel refuses longer seccomp programs.
MAX_INSNS = 4096

_MAX_COND = 255
_SOCK_FILTER = struct.Struct("<HBBI")


class Label:
    """A position in the program; placed by appending it to the item list."""

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Label({self.name!r})"


@dataclass(eq=False)
class Insn:
    """One instruction. For jumps, ``jt``/``jf`` are labels (None = the next instruction);
    for ``ja`` the target is ``jt``."""

    code: int
    k: int = 0
    jt: Label | None = None
    jf: Label | None = None


Item = Insn | Label


def ld_abs(offset: int) -> Insn:
    return Insn(LD_ABS, offset)


def ret(value: int) -> Insn:
    return Insn(RET_K, value)


def ja(target: Label) -> Insn:
    return Insn(JA, 0, target)


def jump(code: int, k: int, jt: Label | None, jf: Label | None) -> Insn:
    return Insn(code, k, jt, jf)


def _is_cond(insn: Insn) -> bool:
    return insn.code & 0x07 == BPF_JMP and insn.code != JA


def assemble(items: list[Item]) -> bytes:
    """Resolve labels (inserting trampolines for far conditional targets) and encode."""
    insns = [it for it in items if isinstance(it, Insn)]
    tramp_t = [False] * len(insns)
    tramp_f = [False] * len(insns)
    while True:
        pos, label_pos = _layout(items, tramp_t, tramp_f)
        changed = False
        for i, insn in enumerate(insns):
            if not _is_cond(insn):
                continue
            for tramps, target in ((tramp_t, insn.jt), (tramp_f, insn.jf)):
                if target is not None and not tramps[i] and label_pos[id(target)] - (pos[i] + 1) > _MAX_COND:
                    tramps[i] = True
                    changed = True
        if not changed:
            break
    total = pos[-1] + 1 + tramp_t[-1] + tramp_f[-1] if insns else 0
    if total > MAX_INSNS:
        raise SpecError(
            f"the seccomp profile compiles to {total} BPF instructions, the kernel accepts at most {MAX_INSNS}",
            field="linux.seccomp",
        )
    returns = _returns_at(items)
    out = bytearray()
    for i, insn in enumerate(insns):
        p = pos[i]
        if insn.code == JA:
            assert insn.jt is not None
            out += _encode(insn.code, 0, 0, _offset(label_pos, insn.jt, p + 1))
            continue
        if not _is_cond(insn):
            out += _encode(insn.code, 0, 0, insn.k)
            continue
        # A missing label means "the next item", which sits after this jump's trampolines.
        fall = tramp_t[i] + tramp_f[i]
        jt = 0 if tramp_t[i] else (_offset(label_pos, insn.jt, p + 1) if insn.jt is not None else fall)
        if tramp_f[i]:
            jf = 1 if tramp_t[i] else 0
        else:
            jf = _offset(label_pos, insn.jf, p + 1) if insn.jf is not None else fall
        out += _encode(insn.code, jt, jf, insn.k)
        if tramp_t[i]:
            assert insn.jt is not None
            out += _trampoline(insn.jt, label_pos, returns, p + 1)
        if tramp_f[i]:
            assert insn.jf is not None
            out += _trampoline(insn.jf, label_pos, returns, p + 1 + tramp_t[i])
    return bytes(out)


def _returns_at(items: list[Item]) -> dict[int, int]:
    """Labels placed right before a ``ret``: their trampolines can be that ``ret`` itself."""
    found: dict[int, int] = {}
    pending: list[Label] = []
    for it in items:
        if isinstance(it, Label):
            pending.append(it)
            continue
        if it.code == RET_K:
            found.update((id(label), it.k) for label in pending)
        pending = []
    return found


def _trampoline(target: Label, label_pos: dict[int, int], returns: dict[int, int], here: int) -> bytes:
    # A copy of the target's ``ret`` is as short as a ``ja`` to it and saves a jump at run time.
    if id(target) in returns:
        return _encode(RET_K, 0, 0, returns[id(target)])
    return _encode(JA, 0, 0, label_pos[id(target)] - (here + 1))


def _layout(items: list[Item], tramp_t: list[bool], tramp_f: list[bool]) -> tuple[list[int], dict[int, int]]:
    pos: list[int] = []
    label_pos: dict[int, int] = {}
    here = 0
    for it in items:
        if isinstance(it, Label):
            label_pos[id(it)] = here
            continue
        i = len(pos)
        pos.append(here)
        here += 1 + tramp_t[i] + tramp_f[i]
    return pos, label_pos


def _offset(label_pos: dict[int, int], target: Label, after: int) -> int:
    """Offset from the instruction following a jump (at ``after``) to ``target``."""
    off = label_pos[id(target)] - after
    if off < 0:
        raise AssertionError(f"backward jump to {target!r}")  # a compiler bug: BPF jumps only forward
    return off


def _encode(code: int, jt: int, jf: int, k: int) -> bytes:
    if not (0 <= jt <= _MAX_COND and 0 <= jf <= _MAX_COND):
        raise AssertionError(f"jump offset out of range: jt={jt} jf={jf}")
    return _SOCK_FILTER.pack(code, jt, jf, k & 0xFFFFFFFF)


def disassemble(program: bytes) -> list[tuple[int, int, int, int]]:
    """Split a program into (code, jt, jf, k) tuples (for tests and debugging)."""
    return [_SOCK_FILTER.unpack_from(program, i) for i in range(0, len(program), _SOCK_FILTER.size)]
