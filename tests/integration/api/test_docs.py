"""Every ```python block of docs/python-api.md runs, in order, in one namespace."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.helpers.leaks import LeakCheck

DOC = Path(__file__).resolve().parents[3] / "docs" / "python-api.md"


def test_python_api_doc_examples(busybox_rootfs: str, capsys: object) -> None:
    from tinycontainer._bundle import default_lib_root

    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) >= 4
    check = LeakCheck(state_root=os.path.join(default_lib_root(), "state"),
                      container_ids=lambda: ["tcontainer-tc-", default_lib_root()])
    namespace: dict[str, object] = {"ROOTFS": busybox_rootfs}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{DOC.name}[block {i}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"docs/python-api.md block {i} failed: {exc!r}\n{block}") from exc
    check.assert_clean()
