"""The OCI state document (runtime-spec runtime.md "State").

A plain class, not a dataclass: ``tcontainer-oci state`` is called by podman for every
container and should not pay for building the config classes it never uses.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.2.0"


class State:
    __slots__ = ("annotations", "bundle", "id", "oci_version", "pid", "status")

    def __init__(
        self,
        *,
        id: str,
        status: str,
        bundle: str,
        pid: int = 0,
        annotations: dict[str, str] | None = None,
        oci_version: str = OCI_VERSION,
    ) -> None:
        self.oci_version = oci_version
        self.id = id
        self.status = status
        self.pid = pid
        self.bundle = bundle
        self.annotations = annotations

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": self.status,
            "pid": self.pid,
            "bundle": self.bundle,
        }
        if self.annotations is not None:
            out["annotations"] = self.annotations
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"State({self.to_dict()!r})"
