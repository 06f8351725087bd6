"""Every property test of the domain runs at least 500 examples, whatever profile CI loads.

Settings given on the decorator win over a loaded profile, so checking the decorators is enough.
"""

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import tests.unit.domain as domain_tests

MIN_EXAMPLES = 500


def property_tests() -> Iterator[tuple[str, Any]]:
    for module_info in pkgutil.iter_modules(domain_tests.__path__):
        if not module_info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"{domain_tests.__name__}.{module_info.name}")
        for name, value in vars(module).items():
            if name.startswith("test_") and getattr(value, "is_hypothesis_test", False):
                yield f"{module_info.name}.{name}", value


def test_there_are_property_tests() -> None:
    assert len(list(property_tests())) >= 25


def test_every_property_test_runs_at_least_500_examples_without_a_deadline() -> None:
    too_small = {}
    for name, test in property_tests():
        applied = test._hypothesis_internal_use_settings
        if applied.max_examples < MIN_EXAMPLES or applied.deadline is not None:
            too_small[name] = (applied.max_examples, applied.deadline)
    assert too_small == {}
