"""A lean stand-in for ``@dataclass`` for the OCI data classes and the engine's plain records.

``tcontainer-oci`` builds ~35 config classes at every start; ``dataclasses`` generates each
class's methods with exec(), and importing it pulls in ``inspect``, ``ast`` and ``dis``: together
about a fifth of a container start. ``record`` gives every class the same ``__init__``,
``__eq__`` and ``__repr__`` functions, which read the class's field list; that list is worked
out when the class is first used, so a class no command instantiates costs little more than its
class statement. ``dataclass_transform`` (PEP 681) tells type checkers what it does.

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
    meta: _Meta = getattr(cls, "__record_meta__")  # noqa: B009 (set by record())
    return meta.planned().fields


def is_record(obj: Any) -> bool:
    return hasattr(obj, "__record_meta__")


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
    # Only what a class statement's readers see is done here: the Field markers become plain
    # defaults (dataclasses' class attributes), the methods are the shared ones below. The field
    # list and what instance creation needs are worked out when the class is first used
    # (_Meta.plan): most of the OCI classes are never instantiated by a given command.
    own: dict[str, Field] = {}
    namespace = cls.__dict__
    for name in namespace.get("__annotations__", ()):
        value = namespace.get(name)
        if type(value) is Field:
            own[name] = value
            if value.default is not _MISSING:
                setattr(cls, name, value.default)
            else:
                delattr(cls, name)
    setattr(cls, "__record_meta__", _Meta(cls, own, kw_only))  # noqa: B010 (mypy refuses these)
    setattr(cls, "__init__", _init)  # noqa: B010
    setattr(cls, "__eq__", _eq)  # noqa: B010
    setattr(cls, "__repr__", _repr)  # noqa: B010
    if frozen:
        setattr(cls, "__setattr__", _refuse_assignment)  # noqa: B010
        setattr(cls, "__delattr__", _refuse_assignment)  # noqa: B010
        # dataclasses' rule: eq + frozen instances hash by their fields (usable as dict keys)
        setattr(cls, "__hash__", _hash)  # noqa: B010
    else:
        setattr(cls, "__hash__", None)  # noqa: B010
    return cls


class _Plan:
    """What creating, comparing and printing instances of one record class needs."""

    __slots__ = ("factories", "fields", "in_dict", "names", "positional", "required", "template")

    def __init__(self, cls: type, kw_only: bool) -> None:
        specs: dict[str, Field] = {}
        for klass in reversed(cls.__mro__[:-1]):
            # The Field markers of a record class were taken off the class by _build.
            meta = klass.__dict__.get("__record_meta__")
            markers = meta.own if meta is not None else {}
            for name in klass.__dict__.get("__annotations__", {}):  # noqa: RUF063 (inspect costs 2 ms to import)
                value = markers.get(name, klass.__dict__.get(name, _MISSING))
                spec = value if isinstance(value, Field) else Field(value, None, {})
                spec.name = name
                specs.pop(name, None)  # a redeclared field moves to the end, as in dataclasses
                specs[name] = spec
        self.fields = tuple(specs.values())
        self.names = tuple(specs)
        self.positional = 0 if kw_only else len(self.names)
        # Every field in declaration order with its plain default (_MISSING where the value comes
        # from the caller or a factory): an instance's attributes are set in that order.
        self.template: dict[str, Any] = {}
        required: list[str] = []
        factories: list[tuple[str, Callable[[], Any]]] = []
        # Fields are plain instance attributes unless the class says otherwise (__slots__, a
        # property): then they are set through object.__setattr__, as dataclasses sets them.
        self.in_dict = "__slots__" not in cls.__dict__
        for spec in self.fields:
            default = self.template[spec.name] = spec.default
            if spec.default_factory is not None:
                factories.append((spec.name, spec.default_factory))
            elif default is _MISSING:
                required.append(spec.name)
            elif hasattr(type(default), "__set__"):
                self.in_dict = False
        self.required = frozenset(required)
        self.factories = tuple(factories)


class _Meta:
    __slots__ = ("cls", "kw_only", "own", "plan")

    def __init__(self, cls: type, own: dict[str, Field], kw_only: bool) -> None:
        self.cls = cls
        self.own = own
        self.kw_only = kw_only
        self.plan: _Plan | None = None

    def planned(self) -> _Plan:
        plan = self.plan
        if plan is None:
            plan = self.plan = _Plan(self.cls, self.kw_only)
        return plan


def _plan(obj: Any) -> tuple[type, _Plan]:
    meta: _Meta = type(obj).__record_meta__
    return meta.cls, meta.plan or meta.planned()


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    meta: _Meta = type(self).__record_meta__
    plan = meta.plan or meta.planned()
    cls = meta.cls
    if args:
        if len(args) > plan.positional:
            raise TypeError(f"{cls.__name__}() takes {plan.positional} positional arguments")
        for name, value in zip(plan.names, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            kwargs[name] = value
    values = plan.template.copy()
    if len(values) != len(kwargs) or plan.factories:
        unknown = kwargs.keys() - values.keys()
        if unknown:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        missing = plan.required - kwargs.keys()
        if missing:
            raise TypeError(f"{cls.__name__}() missing required keyword argument: {sorted(missing)[0]!r}")
        for name, factory in plan.factories:
            if name not in kwargs:
                values[name] = factory()
    elif kwargs.keys() != values.keys():  # as many arguments as fields, but not the fields
        unknown = kwargs.keys() - values.keys()
        raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    values.update(kwargs)
    if plan.in_dict:
        self.__dict__.update(values)
    else:
        for name, value in values.items():
            object.__setattr__(self, name, value)


def _eq(self: Any, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return all(getattr(self, n) == getattr(other, n) for n in _plan(self)[1].names)


def _repr(self: Any) -> str:
    cls, plan = _plan(self)
    inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in plan.names)
    return f"{cls.__name__}({inner})"


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in _plan(self)[1].names))


def _refuse_assignment(self: Any, name: str, *_value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def replace(obj: T, **changes: Any) -> T:
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    values.update(changes)
    result: T = type(obj)(**values)
    return result
