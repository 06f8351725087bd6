"""A faster ``__init__`` and copy for frozen slotted dataclasses, with the same behaviour.

A frozen dataclass's generated ``__init__`` stores each field with ``object.__setattr__(self, name,
value)``: a method lookup and a generic attribute set per field. Records and events have up to 23
fields and are built several times per run, so that alone cost more than their validation. The
replacement stores each field through its slot descriptor (what ``object.__setattr__`` ends up
calling), in the same order, then calls ``__post_init__`` as before; parameters, defaults,
annotations and error messages are those of the generated ``__init__``. ``slot_copier`` copies
fields between instances the same way (the reducer's record copies, event records).
"""

import inspect
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields, is_dataclass
from types import MemberDescriptorType
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The descriptor setter of ``cls``'s slot ``name`` (declared on ``cls`` or a base class)."""
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None:
            if not isinstance(descriptor, MemberDescriptorType):
                raise TypeError(f"{cls.__qualname__}.{name} is not a slot.")
            return descriptor.__set__
    raise TypeError(f"{cls.__qualname__}.{name} has no slot.")


def slot_init(cls: T) -> T:
    """Replace the generated ``__init__`` of the frozen, slotted dataclass ``cls`` (see module doc).

    Only plain fields are supported (no ``init=False``, no ``default_factory``, no ``InitVar``), so
    the generated ``__init__`` does nothing but store its arguments and call ``__post_init__``.
    """
    if not is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__qualname__} must be a slotted dataclass.")
    original = cls.__dict__["__init__"]
    names = [f.name for f in fields(cls)]
    if any(not f.init or f.default_factory is not MISSING for f in fields(cls)):
        raise TypeError(f"{cls.__qualname__} has a field slot_init cannot store.")
    parameters = list(inspect.signature(original).parameters.values())[1:]
    if [p.name for p in parameters] != names:
        raise TypeError(f"{cls.__qualname__}.__init__ takes more than its fields.")
    header = ["self"]
    keyword_only = False
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not keyword_only:
            header.append("*")
            keyword_only = True
        elif parameter.kind not in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{cls.__qualname__}.__init__ has an unsupported parameter.")
        header.append(parameter.name)
    namespace: dict[str, Any] = {
        f"__slot_init_set_{i}": slot_setter(cls, name) for i, name in enumerate(names)
    }
    body = [f"    __slot_init_set_{i}(self, {name})" for i, name in enumerate(names)]
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__({', '.join(header)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(source, namespace)
    init = namespace["__init__"]
    init.__defaults__ = original.__defaults__
    init.__kwdefaults__ = original.__kwdefaults__
    init.__annotations__ = original.__annotations__
    init.__qualname__ = original.__qualname__
    init.__module__ = original.__module__
    init.__doc__ = original.__doc__
    cls.__init__ = init  # type: ignore[misc]
    return cls


def slot_copier(cls: type, names: Sequence[str]) -> Callable[[Any, Any], None]:
    """``copy(source, target)``: set each of ``target``'s slots ``names`` (of ``cls``) to
    ``source``'s value, as straight-line code (one call per field, no loop or intermediate tuple).
    Nothing is validated: the source is an instance already checked by its own construction."""
    namespace: dict[str, Any] = {f"set_{i}": slot_setter(cls, name) for i, name in enumerate(names)}
    lines = [f"    set_{i}(target, source.{name})\n" for i, name in enumerate(names)]
    exec("def copy(source, target):\n" + ("".join(lines) or "    pass\n"), namespace)
    copy: Callable[[Any, Any], None] = namespace["copy"]
    return copy
