"""``slot_init`` keeps a frozen dataclass's constructor contract while storing through slots."""

import inspect
from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord, RunSummary
from runlane.domain.slot_init import slot_copier, slot_init, slot_setter
from runlane.domain.values import Actor, DeliveryIntent, Environment, Lease, RunFailure, RunSource


def _pair(kw_only: bool) -> tuple[type, type]:
    options = {"kw_only": kw_only}  # not a literal: both variants from one definition

    def make() -> type:
        @dataclass(frozen=True, slots=True, **options)
        class Point:
            x: int
            y: int = 2
            label: str | None = None

            def __post_init__(self) -> None:
                if self.x < 0:
                    raise ValueError("x must not be negative")
                object.__setattr__(self, "label", self.label or f"{self.x},{self.y}")

        return Point

    return make(), slot_init(make())


@pytest.mark.parametrize("kw_only", [False, True])
def test_same_signature_values_post_init_and_errors(kw_only: bool) -> None:
    plain, fast = _pair(kw_only)
    assert inspect.signature(plain) == inspect.signature(fast)
    assert fast.__dict__["__init__"].__qualname__ == plain.__dict__["__init__"].__qualname__
    for kwargs in ({"x": 1}, {"x": 1, "y": 5}, {"x": 3, "y": 4, "label": "p"}):
        a, b = plain(**kwargs), fast(**kwargs)
        assert (a.x, a.y, a.label) == (b.x, b.y, b.label)
    if not kw_only:
        assert (fast(7, 8).x, fast(7, 8).y) == (7, 8)
    with pytest.raises(ValueError, match="negative"):
        fast(x=-1)
    for bad in ({}, {"x": 1, "z": 2}):
        with pytest.raises(TypeError) as expected:
            plain(**bad)
        with pytest.raises(TypeError) as actual:
            fast(**bad)
        assert str(actual.value) == str(expected.value)
    with pytest.raises(FrozenInstanceError):
        fast(x=1).x = 2


def test_rejects_fields_it_cannot_store() -> None:
    @dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = field(default_factory=list)

    with pytest.raises(TypeError):
        slot_init(WithFactory)

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    with pytest.raises(TypeError):
        slot_init(NoSlots)


@pytest.mark.parametrize(
    "cls",
    [
        RunSummary,
        RunRecord,
        RunEvent,
        RunEventRecord,
        Environment,
        Actor,
        RunSource,
        Lease,
        RunFailure,
        DeliveryIntent,
    ],
)
def test_domain_values_keep_their_generated_signature(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters)
    assert parameters == [f.name for f in cls.__dataclass_fields__.values()]  # type: ignore[attr-defined]
    assert cls.__dict__["__init__"].__qualname__ == f"{cls.__qualname__}.__init__"


def test_slot_copier_copies_the_named_slots_without_running_init() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int
        b: str

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    copy = slot_copier(Checked, ("a", "b"))
    target = object.__new__(Checked)
    copy(Checked(1, "x"), target)
    assert target == Checked(1, "x")
    set_a = slot_setter(Checked, "a")
    set_a(target, -5)  # a setter writes the slot as object.__setattr__ would, unchecked
    assert target.a == -5
    with pytest.raises(TypeError, match="has no slot"):
        slot_setter(Checked, "missing")
