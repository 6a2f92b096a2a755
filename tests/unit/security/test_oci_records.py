"""The lean ``@record`` decorator and type-hint resolver behave like dataclasses and typing."""

from __future__ import annotations

import typing

import pytest

from tinycontainer.linux.cgroups import Hierarchy
from tinycontainer.linux.mounts import MountOptions
from tinycontainer.oci import _codec, _runtime_spec
from tinycontainer.oci._record import FrozenInstanceError, field, fields, is_record, record


def test_type_hints_equal_typing_get_type_hints() -> None:
    classes = [v for v in vars(_runtime_spec).values() if isinstance(v, type) and is_record(v)]
    assert len(classes) > 20
    for cls in classes:
        # The resolver stands ANY for typing.Any (it never imports typing); everything else is equal.
        ours = {name: _spell_any(hint) for name, hint in _codec._type_hints(cls).items()}
        assert ours == typing.get_type_hints(cls), cls.__name__


def _spell_any(hint: object) -> object:
    if hint is _codec.ANY:
        return typing.Any
    args = getattr(hint, "__args__", None)
    origin = getattr(hint, "__origin__", None)
    if args and origin is not None:
        return origin[tuple(_spell_any(a) for a in args)]
    return hint


def test_frozen_record_refuses_assignment_and_hashes_by_fields() -> None:
    opts = MountOptions(flags=1, data="mode=755")
    with pytest.raises(FrozenInstanceError):
        opts.flags = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del opts.data  # type: ignore[misc]
    assert opts.flags == 1
    assert hash(opts) == hash(MountOptions(flags=1, data="mode=755"))
    assert {opts: 1}[MountOptions(flags=1, data="mode=755")] == 1
    assert opts != MountOptions(flags=1)


def test_positional_record_takes_fields_in_order() -> None:
    h = Hierarchy("/sys/fs/cgroup/memory", "/", ("memory",))
    assert h == Hierarchy(mountpoint="/sys/fs/cgroup/memory", controllers=("memory",))
    assert repr(h) == "Hierarchy(mountpoint='/sys/fs/cgroup/memory', root='/', controllers=('memory',))"
    with pytest.raises(TypeError):
        Hierarchy("/a", "/", (), "extra")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Hierarchy("/a", mountpoint="/b")  # type: ignore[misc]


def test_keyword_only_record_refuses_positional_arguments() -> None:
    @record
    class Point:
        x: int
        y: int = 0

    assert Point(x=1) == Point(x=1, y=0)
    with pytest.raises(TypeError):
        Point(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    assert Point.__hash__ is None  # mutable: unhashable, as dataclasses makes it


@pytest.mark.parametrize(
    "text",
    [
        "str",
        "int | None",
        "list[str] | None",
        "dict[str, Any]",
        "Root | None",
        "dict[str, TimeOffset] | None",
        "dict[str, int | None]",
        "tuple[int, ...]",
        "list[list[int]]",
        "dict[str,int]",
        "Memory | CPU | None",
    ],
)
def test_annotation_fast_path_builds_what_eval_builds(text: str) -> None:
    namespace = vars(_runtime_spec)
    assert _codec._evaluate(text, namespace) == eval(text, namespace, {"Any": _codec.ANY})


def test_unknown_annotation_name_fails_as_eval_does() -> None:
    with pytest.raises(NameError):
        _codec._evaluate("list[NoSuchRecord] | None", vars(_runtime_spec))


def test_record_fields_and_defaults_survive_lazy_planning() -> None:
    @record(frozen=True)
    class Box:
        size: int
        tags: list[str] = field(default_factory=list)
        label: str = "x"

    assert Box.label == "x" and not hasattr(Box, "tags")  # markers become plain defaults
    a, b = Box(size=1), Box(size=1)
    assert a.tags == [] and a.tags is not b.tags
    assert list(vars(a)) == ["size", "tags", "label"]
    assert [f.name for f in fields(Box)] == ["size", "tags", "label"]
    assert repr(a) == "Box(size=1, tags=[], label='x')"
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Box(size=1, tags=[], colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing required keyword argument: 'size'"):
        Box(label="y")  # type: ignore[call-arg]
