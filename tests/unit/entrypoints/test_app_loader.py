"""``--app module:attribute``: an app, a factory, or one clear error."""

from __future__ import annotations

import pytest

from runlane import ErrorCode, RunlaneApp, RunlaneError
from runlane.entrypoints.app_loader import load_app
from tests.support.apps import basic


def message_of(reference: str | None) -> str:
    with pytest.raises(RunlaneError) as caught:
        load_app(reference)
    assert caught.value.code is ErrorCode.CONFIGURATION_INVALID
    return caught.value.message


def test_loads_an_app_instance() -> None:
    assert load_app("tests.support.apps.basic:app") is basic.app


def test_calls_a_zero_argument_factory() -> None:
    app = load_app("tests.support.apps.basic:scheduled_app")
    assert isinstance(app, RunlaneApp)
    assert [q.name for q in app.queues] == ["default"]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (None, "RUNLANE_APP: no app configured"),
        ("", "RUNLANE_APP: no app configured"),
        ("tests.support.apps.basic", "must look like package.module:attribute"),
        ("no_such_pkg_xyz.jobs:app", "module 'no_such_pkg_xyz.jobs' was not found"),
        ("tests.support.apps.nope:app", "module 'tests.support.apps.nope' was not found"),
        ("tests.support.apps.basic:missing", "has no attribute 'missing'"),
        ("tests.support.apps.basic:not_an_app", "is a int, not a RunlaneApp"),
        ("tests.support.apps.basic:echo", "tests.support.apps.basic:echo needs arguments"),
        ("tests.support.apps.basic:_tasks", "returned dict, not a RunlaneApp"),
    ],
)
def test_errors_are_one_clear_message(reference: str | None, expected: str) -> None:
    assert expected in message_of(reference)
