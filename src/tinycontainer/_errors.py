"""The one exception tree of tinycontainer.

::

    TinyContainerError
     ├── SpecError                  config.json / Spec is malformed or refers to something impossible
     ├── StateError
     │    ├── ContainerNotFound
     │    ├── ContainerExists
     │    └── WrongStatus           e.g. start of a running container
     ├── KernelError (also OSError) a syscall failed; keeps errno, the syscall and the path(s)
     ├── UnsupportedError           asked for a feature this host cannot give (AppArmor, systemd cgroups, ...)
     ├── ContainerError             a container process failed (check=True); has returncode and stderr
     ├── LimitExceeded              the container was stopped by a limit (oom, cpu-time, wall-time)
     ├── ImageError
     │    ├── InvalidReference
     │    ├── RegistryError         HTTP/auth/protocol failure talking to a registry
     │    ├── DigestMismatch
     │    └── UnpackError           a layer could not be applied (hostile or corrupt)
     └── NetworkError

Messages are lower-case without a trailing period, and say what was wrong; the CLI prints
them as one line.
"""

from __future__ import annotations

import errno as _errno
import os


class TinyContainerError(Exception):
    """Base class of every error tinycontainer raises on purpose."""


class SpecError(TinyContainerError):
    """The container description is invalid; ``field`` names the offending field when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.bare_message = message
        super().__init__(f"{field}: {message}" if field else message)

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle as cls(*args); keyword-only fields need their own recipe (these
        # errors cross process boundaries: supervisors, Dask workers).
        return (_rebuild, (type(self), (self.bare_message,), {"field": self.field}))


class StateError(TinyContainerError):
    """The container store does not allow the operation."""


class ContainerNotFound(StateError):
    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__(f"container {container_id!r} does not exist")


class ContainerExists(StateError):
    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__(f"container {container_id!r} already exists")


class WrongStatus(StateError):
    def __init__(self, container_id: str, status: str, wanted: str) -> None:
        self.container_id = container_id
        self.status = status
        super().__init__(f"container {container_id!r} is {status}, it must be {wanted}")


class KernelError(TinyContainerError, OSError):
    """A system call failed. ``errno``, ``syscall`` and ``filename`` say which and where."""

    def __init__(
        self,
        err: int,
        syscall: str,
        path: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.syscall = syscall
        self.detail = detail
        message = f"{syscall}"
        if path is not None:
            message += f" {path}"
        if detail:
            message += f" ({detail})"
        message += f": {os.strerror(err) if err else 'failed'}"
        OSError.__init__(self, err, message, path)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_oserror(cls, exc: OSError, syscall: str, path: str | None = None) -> KernelError:
        return cls(exc.errno or _errno.EIO, syscall, path if path is not None else exc.filename)


class UnsupportedError(TinyContainerError):
    """The request is valid, but this host (or this build) cannot honour it."""


class ContainerError(TinyContainerError):
    """The command in the container exited with a non-zero status (``check=True``)."""

    def __init__(self, returncode: int, cmd: object, stdout: object = None, stderr: object = None) -> None:
        self.returncode = returncode
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"command {cmd!r} in the container exited with status {returncode}")

    def __reduce__(self) -> tuple[object, ...]:
        args = (self.returncode, self.cmd, self.stdout, self.stderr)
        return (_rebuild, (type(self), args, {}, self.__dict__))


class LimitExceeded(TinyContainerError):
    """The container was stopped because it went past a limit; ``reason`` says which."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), (self.reason, self.message), {}, self.__dict__))


class ImageError(TinyContainerError):
    """Pulling, storing or unpacking an image failed."""


class InvalidReference(ImageError):
    pass


class RegistryError(ImageError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class DigestMismatch(ImageError):
    def __init__(self, expected: str, actual: str, what: str = "blob") -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what} digest mismatch: expected {expected}, got {actual}")


class UnpackError(ImageError):
    pass


class NetworkError(TinyContainerError):
    pass


class suppressed:
    """``contextlib.suppress`` for the runtime's start-up path: importing contextlib costs a
    ``tcontainer-oci`` command ~2 ms (it pulls in collections and functools)."""

    __slots__ = ("_exceptions",)

    def __init__(self, *exceptions: type[BaseException]) -> None:
        self._exceptions = exceptions

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        return exc_type is not None and issubclass(exc_type, self._exceptions)


def _rebuild(
    cls: type[BaseException],
    args: tuple[object, ...],
    kwargs: dict[str, object],
    extra: dict[str, object] | None = None,
) -> BaseException:
    exc = cls(*args, **kwargs)
    if extra:
        exc.__dict__.update(extra)
    return exc


__all__ = [
    "ContainerError",
    "ContainerExists",
    "ContainerNotFound",
    "DigestMismatch",
    "ImageError",
    "InvalidReference",
    "KernelError",
    "LimitExceeded",
    "NetworkError",
    "RegistryError",
    "SpecError",
    "StateError",
    "TinyContainerError",
    "UnpackError",
    "UnsupportedError",
    "WrongStatus",
]
