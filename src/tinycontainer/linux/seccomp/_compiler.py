"""OCI ``linux.seccomp`` -> a classic-BPF seccomp program for x86_64 hosts, in pure Python.

Program layout (seccomp(2), "Filter return values"; struct seccomp_data is
``int nr; u32 arch; u64 ip; u64 args[6]``)::

    ld arch
    arch == AUDIT_ARCH_X86_64 ? -> x86_64
    arch == AUDIT_ARCH_I386   ? -> i386        (only when SCMP_ARCH_X86 is listed)
    ret KILL_PROCESS                           (any other arch: the libseccomp "bad arch" rule)
  x86_64: ld nr; nr >= 0x40000000 ? -> x32 (when SCMP_ARCH_X32 is listed) else KILL_PROCESS
          binary search on nr over the x86_64 table
  x32:    binary search on nr over the x32 table (numbers carry __X32_SYSCALL_BIT)
  i386:   ld nr; binary search on nr over the i386 table
  rule chains (argument checks) and the shared ``ret`` instructions

x32 shares AUDIT_ARCH_X86_64 with native code and is told apart only by the syscall bit, so
without the explicit range check an x32 call would be looked up in the x86_64 table: the
classic bypass libseccomp also closes.

Semantics, chosen to match runc + libseccomp:

* the native arch (x86_64) is always in the filter; arches of other machines are accepted
  and ignored ("not this host");
* names missing from our tables are skipped and reported (runc warns the same way);
* for one syscall, rules with argument checks are tried in profile order first (the first
  whose checks all match decides), then the first rule without checks, then the default;
* inside one rule the checks are ANDed, except when two checks name the same argument:
  runc then adds each check as its own rule (OR), and so do we;
* 64-bit compares are done on both 32-bit halves. On i386 the kernel's syscall sees only the
  low half, so there the high half is taken as 0 and the compare folded at compile time
  (libseccomp compares only the low word on 32-bit arches too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ... import oci
from ..._errors import SpecError, UnsupportedError
from . import _bpf as B
from . import _tables

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000

SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4

# struct seccomp_data offsets (little endian: the low half of args[i] comes first)
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARGS = 16

_EPERM = 1
_MAX_ERRNO = 4095  # include/linux/err.h: larger values are not errors to libc
_U64 = (1 << 64) - 1
_U32 = 0xFFFFFFFF

HOST_ARCHES = {"SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X86": "i386", "SCMP_ARCH_X32": "x32"}
FOREIGN_ARCHES = frozenset(
    {
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_SH",
        "SCMP_ARCH_SHEB",
    }
)

FILTER_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": SECCOMP_FILTER_FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": SECCOMP_FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": SECCOMP_FILTER_FLAG_SPEC_ALLOW,
}
# Kernel flags that only make sense with a user-notification listener, which we do not hand out.
_LISTENER_FLAGS = frozenset({"SECCOMP_FILTER_FLAG_NEW_LISTENER", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"})

_SIMPLE_ACTIONS = {
    # libseccomp's SCMP_ACT_KILL is SECCOMP_RET_KILL_THREAD (its historic meaning).
    "SCMP_ACT_KILL": SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": SECCOMP_RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": SECCOMP_RET_TRAP,
    "SCMP_ACT_LOG": SECCOMP_RET_LOG,
    "SCMP_ACT_ALLOW": SECCOMP_RET_ALLOW,
}
ACTIONS = frozenset({*_SIMPLE_ACTIONS, "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_NOTIFY"})

OPS = frozenset(
    {
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    }
)

_TABLES = {"x86_64": _tables.X86_64, "i386": _tables.I386, "x32": _tables.X32}


@dataclass(frozen=True)
class CompiledFilter:
    """A ready-to-load program: ``program`` is ``struct sock_filter[]`` as bytes."""

    program: bytes
    flags: int
    unknown_syscalls: tuple[str, ...]

    @property
    def instructions(self) -> int:
        return len(self.program) // 8


@dataclass(frozen=True)
class _Cond:
    index: int
    op: str
    value: int
    value_two: int


@dataclass(frozen=True)
class _Rule:
    conds: tuple[_Cond, ...]
    action: int


def filter_flags(seccomp: oci.Seccomp, *, field: str = "linux.seccomp") -> int:
    """The ``seccomp(SECCOMP_SET_MODE_FILTER, flags, ...)`` flags the profile asks for."""
    flags = 0
    for i, name in enumerate(seccomp.flags or []):
        if name in FILTER_FLAGS:
            flags |= FILTER_FLAGS[name]
        elif name in _LISTENER_FLAGS:
            raise UnsupportedError(
                f"{field}.flags[{i}]: {name} needs a seccomp notify listener, which is not supported"
            )
        else:
            raise SpecError(f"unknown seccomp flag {name!r}", field=f"{field}.flags[{i}]")
    return flags


def host_arches(seccomp: oci.Seccomp, *, field: str = "linux.seccomp") -> list[str]:
    """The table names (x86_64 first) the filter covers; foreign arches are dropped."""
    arches = ["x86_64"]
    for i, name in enumerate(seccomp.architectures or []):
        if name in HOST_ARCHES:
            if HOST_ARCHES[name] not in arches:
                arches.append(HOST_ARCHES[name])
        elif name not in FOREIGN_ARCHES:
            raise SpecError(f"unknown architecture {name!r}", field=f"{field}.architectures[{i}]")
    return arches


def unknown_syscalls(seccomp: oci.Seccomp, *, field: str = "linux.seccomp") -> list[str]:
    """Names in the profile that none of the covered arches' tables know (they are skipped)."""
    tables = [_TABLES[a] for a in host_arches(seccomp, field=field)]
    seen: set[str] = set()
    unknown: list[str] = []
    for rule in seccomp.syscalls or []:
        for name in rule.names:
            if name not in seen and not any(name in t for t in tables):
                unknown.append(name)
            seen.add(name)
    return unknown


def compile_filter(seccomp: oci.Seccomp, *, field: str = "linux.seccomp") -> CompiledFilter:
    """Compile ``seccomp`` for an x86_64 host (covering x86_64 and, if listed, i386 and x32)."""
    flags = filter_flags(seccomp, field=field)
    arches = host_arches(seccomp, field=field)
    default = _action(seccomp.default_action, seccomp.default_errno_ret, f"{field}.defaultAction")
    rules_by_name = _rules_by_name(seccomp.syscalls or [], field)
    program = _Emitter(default).program(arches, rules_by_name)
    return CompiledFilter(program, flags, tuple(unknown_syscalls(seccomp, field=field)))


def _action(name: str, errno_ret: int | None, field: str) -> int:
    if name in _SIMPLE_ACTIONS:
        if errno_ret is not None:
            raise SpecError("errnoRet is only allowed with SCMP_ACT_ERRNO and SCMP_ACT_TRACE", field=field)
        return _SIMPLE_ACTIONS[name]
    if name == "SCMP_ACT_ERRNO":
        code = _EPERM if errno_ret is None else errno_ret
        if not 0 <= code <= _MAX_ERRNO:
            raise SpecError(f"errnoRet {code} is not an errno value (0..{_MAX_ERRNO})", field=field)
        return SECCOMP_RET_ERRNO | code
    if name == "SCMP_ACT_TRACE":
        # runc passes errnoRet (default EPERM) as the tracer's message, so do we.
        code = _EPERM if errno_ret is None else errno_ret
        if not 0 <= code <= 0xFFFF:
            raise SpecError(f"errnoRet {code} does not fit SECCOMP_RET_DATA (0..65535)", field=field)
        return SECCOMP_RET_TRACE | code
    if name == "SCMP_ACT_NOTIFY":
        raise UnsupportedError(f"{field}: SCMP_ACT_NOTIFY needs a seccomp notify listener, which is not supported")
    raise SpecError(f"unknown seccomp action {name!r}", field=field)


def _u64(value: int, field: str) -> int:
    # The spec says uint64; a negative value is read as its two's complement, as C would.
    if not -(1 << 63) <= value <= _U64:
        raise SpecError(f"{value} does not fit in 64 bits", field=field)
    return value & _U64


def _conds(args: Sequence[oci.SyscallArg], field: str) -> list[_Cond]:
    out = []
    for j, arg in enumerate(args):
        where = f"{field}.args[{j}]"
        if not 0 <= arg.index <= 5:
            raise SpecError(f"argument index {arg.index} is not 0..5", field=f"{where}.index")
        if arg.op not in OPS:
            raise SpecError(f"unknown comparison {arg.op!r}", field=f"{where}.op")
        value_two = _u64(arg.value_two or 0, f"{where}.valueTwo")
        out.append(_Cond(arg.index, arg.op, _u64(arg.value, f"{where}.value"), value_two))
    return out


def _rules_by_name(syscalls: Sequence[oci.Syscall], field: str) -> dict[str, list[_Rule]]:
    by_name: dict[str, list[_Rule]] = {}
    for i, entry in enumerate(syscalls):
        where = f"{field}.syscalls[{i}]"
        action = _action(entry.action, entry.errno_ret, f"{where}.action")
        conds = _conds(entry.args or [], where)
        indexes = [c.index for c in conds]
        if len(set(indexes)) < len(indexes):
            rules = [_Rule((c,), action) for c in conds]  # runc's "same argument twice" rule: OR
        else:
            rules = [_Rule(tuple(conds), action)]
        for name in entry.names:
            by_name.setdefault(name, []).extend(rules)
    return by_name


class _Emitter:
    def __init__(self, default: int) -> None:
        self.default = default
        self.items: list[B.Item] = []
        self.tail: list[B.Item] = []
        self.rets: dict[int, B.Label] = {}
        self.chains: dict[tuple[bool, tuple[_Rule, ...], int], B.Label] = {}

    def ret_label(self, value: int) -> B.Label:
        label = self.rets.get(value)
        if label is None:
            label = self.rets[value] = B.Label(f"ret {value:#x}")
        return label

    def program(self, arches: list[str], rules_by_name: dict[str, list[_Rule]]) -> bytes:
        kill = self.ret_label(SECCOMP_RET_KILL_PROCESS)
        x86_64, i386, x32 = B.Label("x86_64"), B.Label("i386"), B.Label("x32")
        out = self.items
        out.append(B.ld_abs(_OFF_ARCH))
        out.append(B.jump(B.JEQ, AUDIT_ARCH_X86_64, x86_64, None))
        if "i386" in arches:
            out.append(B.jump(B.JEQ, AUDIT_ARCH_I386, i386, None))
        out.append(B.ja(kill))

        out += [x86_64, B.ld_abs(_OFF_NR)]
        out.append(B.jump(B.JGE, X32_SYSCALL_BIT, x32 if "x32" in arches else kill, None))
        self.tree(self.targets("x86_64", rules_by_name, False), 0, X32_SYSCALL_BIT)
        if "x32" in arches:
            out.append(x32)
            self.tree(self.targets("x32", rules_by_name, False), X32_SYSCALL_BIT, 1 << 32)
        if "i386" in arches:
            out += [i386, B.ld_abs(_OFF_NR)]
            self.tree(self.targets("i386", rules_by_name, True), 0, 1 << 32)
        out += self.tail
        for value, label in self.rets.items():
            out += [label, B.ret(value)]
        return B.assemble(out)

    def targets(self, arch: str, rules_by_name: dict[str, list[_Rule]], is32: bool) -> dict[int, B.Label]:
        table = _TABLES[arch]
        by_nr: dict[int, list[_Rule]] = {}
        for name, rules in rules_by_name.items():
            nr = table.get(name)
            if nr is not None:
                by_nr.setdefault(nr, []).extend(rules)
        return {nr: self.chain(rules, is32) for nr, rules in by_nr.items()}

    def chain(self, rules: list[_Rule], is32: bool) -> B.Label:
        conditional = tuple(r for r in rules if r.conds)
        fallback = next((r.action for r in rules if not r.conds), self.default)
        if not conditional:
            return self.ret_label(fallback)
        key = (is32, conditional, fallback)
        label = self.chains.get(key)
        if label is not None:
            return label
        label = self.chains[key] = B.Label("chain")
        out = self.tail
        out.append(label)
        for rule in conditional:
            next_rule = B.Label("next rule")
            for j, cond in enumerate(rule.conds):
                last = j == len(rule.conds) - 1
                match = self.ret_label(rule.action) if last else B.Label("and")
                _emit_cond(out, cond, match, next_rule, is32)
                if not last:
                    out.append(match)
            out.append(next_rule)
        out.append(B.ja(self.ret_label(fallback)))
        return label

    def tree(self, targets: dict[int, B.Label], lo: int, hi: int) -> None:
        """Binary search over [lo, hi) with A = nr; numbers not in ``targets`` get the default."""
        default = self.ret_label(self.default)
        segments: list[tuple[int, B.Label]] = []
        cursor = lo
        for nr in sorted(n for n in targets if lo <= n < hi):
            if nr > cursor:
                segments.append((cursor, default))
            segments.append((nr, targets[nr]))
            cursor = nr + 1
        if cursor < hi:
            segments.append((cursor, default))
        merged: list[tuple[int, B.Label]] = []
        for start, target in segments:
            if merged and merged[-1][1] is target:
                continue
            merged.append((start, target))
        out = self.items

        def node(segs: list[tuple[int, B.Label]]) -> B.Label:
            if len(segs) == 1:
                return segs[0][1]
            label = B.Label("node")
            mid = len(segs) // 2
            insn = B.jump(B.JGE, segs[mid][0], None, None)
            out.extend((label, insn))
            insn.jf = node(segs[:mid])
            insn.jt = node(segs[mid:])
            return label

        if len(merged) == 1:
            out.append(B.ja(merged[0][1]))
        else:
            node(merged)


def _emit_cond(out: list[B.Item], cond: _Cond, match: B.Label, nomatch: B.Label, is32: bool) -> None:
    """Jump to ``match`` when ``args[index] <op> value`` holds for the 64-bit argument, else ``nomatch``."""
    op = cond.op
    # NE, LT and LE are EQ, GE and GT with the outcomes swapped.
    if op in ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE"):
        op = {"SCMP_CMP_NE": "SCMP_CMP_EQ", "SCMP_CMP_LT": "SCMP_CMP_GE", "SCMP_CMP_LE": "SCMP_CMP_GT"}[op]
        match, nomatch = nomatch, match
    lo_off = _OFF_ARGS + 8 * cond.index
    hi_off = lo_off + 4
    if op == "SCMP_CMP_MASKED_EQ":
        mask, datum = cond.value, cond.value_two
        m_hi, m_lo, d_hi, d_lo = mask >> 32, mask & _U32, datum >> 32, datum & _U32
        if is32 or m_hi == 0:
            # The high half of (arg & mask) is 0 (known zero on i386, or masked away).
            if d_hi != 0:
                out.append(B.ja(nomatch))
                return
        else:
            out += [B.ld_abs(hi_off), B.Insn(B.AND_K, m_hi), B.jump(B.JEQ, d_hi, None, nomatch)]
        out += [B.ld_abs(lo_off), B.Insn(B.AND_K, m_lo), B.jump(B.JEQ, d_lo, match, nomatch)]
        return
    v_hi, v_lo = cond.value >> 32, cond.value & _U32
    final = {"SCMP_CMP_EQ": B.JEQ, "SCMP_CMP_GT": B.JGT, "SCMP_CMP_GE": B.JGE}[op]
    if is32:
        if v_hi != 0:  # a zero high half is neither equal to nor above a non-zero one
            out.append(B.ja(nomatch))
            return
    elif op == "SCMP_CMP_EQ":
        out += [B.ld_abs(hi_off), B.jump(B.JEQ, v_hi, None, nomatch)]
    else:
        out += [B.ld_abs(hi_off), B.jump(B.JGT, v_hi, match, None), B.jump(B.JEQ, v_hi, None, nomatch)]
    out += [B.ld_abs(lo_off), B.jump(final, v_lo, match, nomatch)]
