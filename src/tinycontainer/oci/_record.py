"""A lean stand-in for ``@dataclass`` for the OCI data classes and the engine's plain records.

``tcontainer-oci`` builds ~35 config classes at every start; ``dataclasses`` generates each
class's methods with exec(), and importing it pulls in ``inspect``, ``ast`` and ``dis``: together
about a fifth of a container start. ``record`` builds ``__init__``, ``__eq__`` and ``__repr__``
from closures instead. ``dataclass_transform`` (PEP 681) tells type checkers what it does.

``@record`` is ``@dataclass(kw_only=True)``; ``@record(frozen=True)`` adds dataclasses' frozen
semantics (assignment raises :class:`FrozenInstanceError`, instances hash by their fields) and
``@record(kw_only=False)`` also accepts the fields positionally, in declaration order.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform, overload

    T = TypeVar("T")
else:
    # The decorators matter to type checkers only; typing costs ~8 ms to import.
    def overload(function: object) -> object:
        return function

    def dataclass_transform(**_options: object) -> object:
        return overload


_MISSING = object()


class Field:
    __slots__ = ("default", "default_factory", "metadata", "name")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None, metadata: dict[str, str]) -> None:
        self.default = default
        self.default_factory = default_factory
        self.metadata = metadata
        self.name = ""


def field(
    *, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None, metadata: dict[str, str] | None = None
) -> Any:
    return Field(default, default_factory, metadata or {})


def fields(cls_or_obj: Any) -> tuple[Field, ...]:
    cls = cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)
    result: tuple[Field, ...] = getattr(cls, "__record_fields__")  # noqa: B009 (set by record())
    return result


def is_record(obj: Any) -> bool:
    return hasattr(obj, "__record_fields__")


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a ``@record(frozen=True)`` instance (as dataclasses raises)."""


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, frozen: bool = False, kw_only: bool = True) -> Callable[[type[T]], type[T]]: ...  # noqa: F811


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
def record(  # noqa: F811 (ruff does not see the runtime stand-in for overload as typing's)
    cls: type[T] | None = None, /, *, frozen: bool = False, kw_only: bool = True
) -> type[T] | Callable[[type[T]], type[T]]:
    if cls is None:
        return lambda klass: _build(klass, frozen=frozen, kw_only=kw_only)
    return _build(cls, frozen=frozen, kw_only=kw_only)


def _build(cls: type[T], *, frozen: bool, kw_only: bool) -> type[T]:
    specs: list[Field] = []
    for klass in reversed(cls.__mro__[:-1]):
        for name in klass.__dict__.get("__annotations__", {}):  # noqa: RUF063 (inspect costs 2 ms to import)
            value = klass.__dict__.get(name, _MISSING)
            spec = value if isinstance(value, Field) else Field(value, None, {})
            spec.name = name
            specs = [s for s in specs if s.name != name] + [spec]
    names = tuple(s.name for s in specs)
    required = frozenset(s.name for s in specs if s.default is _MISSING and s.default_factory is None)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            if kw_only or len(args) > len(names):
                raise TypeError(f"{cls.__name__}() takes {0 if kw_only else len(names)} positional arguments")
            for name, value in zip(names, args, strict=False):
                if name in kwargs:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
                kwargs[name] = value
        unknown = kwargs.keys() - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        missing = [n for n in required if n not in kwargs]
        if missing:
            raise TypeError(f"{cls.__name__}() missing required keyword argument: {sorted(missing)[0]!r}")
        for spec in specs:
            if spec.name in kwargs:
                value = kwargs[spec.name]
            elif spec.default_factory is not None:
                value = spec.default_factory()
            else:
                value = spec.default
            object.__setattr__(self, spec.name, value)

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{cls.__name__}({inner})"

    for spec in specs:
        # Class attributes keep plain defaults (as dataclasses do) but not Field markers.
        if isinstance(cls.__dict__.get(spec.name), Field):
            if spec.default is not _MISSING:
                setattr(cls, spec.name, spec.default)
            else:
                delattr(cls, spec.name)
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", __init__)  # noqa: B010 (mypy refuses assigning methods)
    setattr(cls, "__eq__", __eq__)  # noqa: B010
    setattr(cls, "__repr__", __repr__)  # noqa: B010
    if frozen:
        setattr(cls, "__setattr__", _refuse_assignment)  # noqa: B010
        setattr(cls, "__delattr__", _refuse_assignment)  # noqa: B010
        # dataclasses' rule: eq + frozen instances hash by their fields (usable as dict keys)
        setattr(cls, "__hash__", lambda self: hash(tuple(getattr(self, n) for n in names)))  # noqa: B010
    else:
        setattr(cls, "__hash__", None)  # noqa: B010
    setattr(cls, "__record_fields__", tuple(specs))  # noqa: B010
    return cls


def _refuse_assignment(self: Any, name: str, *_value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def replace(obj: T, **changes: Any) -> T:
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    values.update(changes)
    result: T = type(obj)(**values)
    return result
