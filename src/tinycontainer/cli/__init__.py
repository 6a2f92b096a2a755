"""Command lines: ``tcontainer`` (everyday use) and ``tcontainer-oci`` (runc-compatible)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from ._main import main as _main

    return _main(argv)
