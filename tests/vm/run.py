"""Command line: ``python3 tests/vm/run.py [pytest args...]`` or ``... --exec CMD [ARGS...]``.

It runs ``pytest -m cgroupv2 [pytest args...] tests/cgroupv2`` inside the VM (the path only when
the arguments name none). The guest's output
is streamed, the boot and run times are printed, and the guest's exit code becomes ours
(125 when the VM itself could not be used).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make the `vm` package (this directory) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vm.harness import (
    VMBootError,
    VMUnavailable,
    guest_pytest_args,
    pytest_command,
    run_in_vm,
    timed_prepare,
)

VM_FAILED = 125


def main(argv: list[str]) -> int:
    timeout = 300.0
    if argv[:1] == ["--timeout"] and len(argv) > 1:
        timeout, argv = float(argv[1]), argv[2:]
    if argv[:1] == ["--exec"]:
        command, env = argv[1:], {}
        if not command:
            print("usage: run.py [--timeout S] --exec COMMAND [ARGS...]", file=sys.stderr)
            return 2
    else:
        command, env = pytest_command(guest_pytest_args(argv)), {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        prepared, prepare_seconds = timed_prepare()
        print(
            f"tc-vm: kernel {prepared.kernel.version} ({prepared.kernel.package_version}), "
            f"ready in {prepare_seconds:.1f} s; booting qemu (TCG)...",
            file=sys.stderr,
            flush=True,
        )
        result = run_in_vm(command, env=env, timeout=timeout, stream=sys.stdout, prepared=prepared)
    except VMUnavailable as exc:
        print(f"tc-vm: cannot run the cgroup v2 VM: {exc}", file=sys.stderr)
        return VM_FAILED
    except VMBootError as exc:
        print(f"tc-vm: the cgroup v2 VM failed: {exc}", file=sys.stderr)
        return VM_FAILED
    print(f"tc-vm: {result.timing()}", file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
