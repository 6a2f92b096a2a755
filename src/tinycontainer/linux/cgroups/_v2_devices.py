"""Device rules on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

cgroup v2 has no devices.* files; the kernel instead runs a program attached to the cgroup
for every device open/mknod (Documentation/admin-guide/cgroup-v2.rst, "Device controller").
The program reads ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}``
(access_type = access << 16 | type) and returns 1 to allow, 0 to deny.

The rules keep v1's meaning: a full wildcard "a" rule resets the default (allow or deny)
and drops the rules before it; later rules are exceptions, the last matching one wins. An
allow rule matches only when it grants every requested access; a deny rule matches when it
takes away any of them.
"""

from __future__ import annotations

import errno
import os
import struct

from ... import oci
from ..._errors import KernelError
from . import _devices

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # enum bpf_attach_type
BPF_F_ALLOW_MULTI = 2
_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

# Opcodes (include/uapi/linux/bpf_common.h, bpf.h): class | op | source.
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_ALU32_AND_K = 0x54
_ALU32_RSH_K = 0x74
_ALU32_MOV_K = 0xB4
_ALU32_MOV_X = 0xBC
_JMP32_JNE_K = 0x56  # BPF_JMP32 compares the low 32 bits: device numbers are u32
_JMP32_JNE_X = 0x5E
_JMP32_JEQ_K = 0x16
_EXIT = 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    if imm >= 1 << 31:
        imm -= 1 << 32  # the field is s32; JMP32 compares the same 32 bits
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


Rule = tuple[bool, str, int | None, int | None, str]


def effective_rules(rules: list[oci.DeviceRule]) -> tuple[bool, list[Rule]]:
    """(default allow?, exceptions in order) the way v1 would end up after these writes."""
    normalized = [_devices.normalize(rule, i) for i, rule in enumerate(rules)]
    default = True  # a new cgroup inherits the root's allow-all
    exceptions: list[Rule] = []
    for rule in normalized:
        allow, kind, major, minor, access = rule
        if kind == "a" and major is None and minor is None and access == "rwm":
            default, exceptions = allow, []
        elif kind == "a":
            exceptions += [(allow, "b", major, minor, access), (allow, "c", major, minor, access)]
        else:
            exceptions.append(rule)
    return default, exceptions


def program(rules: list[oci.DeviceRule]) -> bytes:
    """The filter's instructions for ``rules``."""
    default, exceptions = effective_rules(rules)
    code = [
        _insn(_LDX_MEM_W, dst=2, src=1, off=0),
        _insn(_ALU32_AND_K, dst=2, imm=0xFFFF),  # r2 = device type
        _insn(_LDX_MEM_W, dst=3, src=1, off=0),
        _insn(_ALU32_RSH_K, dst=3, imm=16),  # r3 = requested access
        _insn(_LDX_MEM_W, dst=4, src=1, off=4),  # r4 = major
        _insn(_LDX_MEM_W, dst=5, src=1, off=8),  # r5 = minor
    ]
    # Last rule first: the first block that matches decides.
    for allow, kind, major, minor, access in reversed(exceptions):
        block: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm); jumps go to the block's end
        block.append((_JMP32_JNE_K, 2, 0, _TYPES[kind]))
        if access != "rwm":
            mask = sum(_ACCESS[c] for c in access)
            block.append((_ALU32_MOV_X, 1, 3, 0))
            block.append((_ALU32_AND_K, 1, 0, mask))
            if allow:
                block.append((_JMP32_JNE_X, 1, 3, 0))  # some requested access not granted
            else:
                block.append((_JMP32_JEQ_K, 1, 0, 0))  # none of the requested access is denied
        if major is not None:
            block.append((_JMP32_JNE_K, 4, 0, major))
        if minor is not None:
            block.append((_JMP32_JNE_K, 5, 0, minor))
        size = len(block) + 2
        for i, (op, dst, src, imm) in enumerate(block):
            jump = op in (_JMP32_JNE_K, _JMP32_JNE_X, _JMP32_JEQ_K)
            code.append(_insn(op, dst=dst, src=src, off=size - i - 1 if jump else 0, imm=imm))
        code.append(_insn(_ALU32_MOV_K, dst=0, imm=int(allow)))
        code.append(_insn(_EXIT))
    code.append(_insn(_ALU32_MOV_K, dst=0, imm=int(default)))
    code.append(_insn(_EXIT))
    return b"".join(code)


def apply(directory: str, rules: list[oci.DeviceRule]) -> None:
    """Attach the filter for ``rules`` to the cgroup, then detach the filters it replaces.

    BPF_F_ALLOW_MULTI lets a nested runtime attach its own filter below ours (the kernel
    runs every program from the cgroup up to the root; all must allow). The new program is
    attached before the old ones go, so there is no moment without a filter.
    """
    from .. import _libc

    insns = program(rules)
    dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old_ids = _libc.bpf_prog_query(dirfd, BPF_CGROUP_DEVICE, directory)
        prog = _libc.bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, insns, "Apache-2.0", "tc_devices", BPF_CGROUP_DEVICE)
        try:
            _libc.bpf_prog_attach(dirfd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, directory)
        finally:
            os.close(prog)  # the attachment holds its own reference
        for prog_id in old_ids:
            try:
                old = _libc.bpf_prog_get_fd_by_id(prog_id)
            except KernelError as exc:
                if exc.errno == errno.ENOENT:
                    continue
                raise
            try:
                _libc.bpf_prog_detach(dirfd, old, BPF_CGROUP_DEVICE, directory)
            finally:
                os.close(old)
    finally:
        os.close(dirfd)
