"""The lean ``@record`` decorator and type-hint resolver behave like dataclasses and typing."""

from __future__ import annotations

import typing

import pytest

from tinycontainer.linux.cgroups import Hierarchy
from tinycontainer.linux.mounts import MountOptions
from tinycontainer.oci import _codec, _runtime_spec
from tinycontainer.oci._record import FrozenInstanceError, is_record, record


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
