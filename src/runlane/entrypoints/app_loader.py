"""Load the deployment's ``RunlaneApp`` from ``module:attribute`` (``--app`` or ``RUNLANE_APP``)."""

import importlib
import inspect
import os
import sys

from runlane.application.app_definition import RunlaneApp
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

APP_VARIABLE = "RUNLANE_APP"


def _invalid(message: str) -> RunlaneError:
    return RunlaneError(ErrorCode.CONFIGURATION_INVALID, message)


def load_app(reference: str | None) -> RunlaneApp:
    """The attribute may be a ``RunlaneApp`` or a zero-argument callable returning one.

    The working directory is importable (as with ``python -m``), so ``myproject.jobs:app`` works
    from a project checkout without installing it.
    """
    if not reference:
        raise _invalid(f"{APP_VARIABLE}: no app configured; pass --app package.module:attribute")
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise _invalid(f"{APP_VARIABLE}: must look like package.module:attribute (got {reference!r})")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            raise _invalid(f"{APP_VARIABLE}: module {module_name!r} was not found") from None
        raise _invalid(
            f"{APP_VARIABLE}: importing {module_name!r} failed: it imports missing module {exc.name!r}"
        ) from exc
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise _invalid(f"{APP_VARIABLE}: module {module_name!r} has no attribute {attribute!r}") from None
    if isinstance(target, RunlaneApp):
        return target
    if callable(target):
        if not _takes_no_arguments(target):
            raise _invalid(
                f"{APP_VARIABLE}: {reference} needs arguments; point at a RunlaneApp "
                "or a zero-argument callable returning one"
            )
        built = target()
        if isinstance(built, RunlaneApp):
            return built
        raise _invalid(f"{APP_VARIABLE}: {reference} returned {type(built).__name__}, not a RunlaneApp")
    raise _invalid(
        f"{APP_VARIABLE}: {reference} is a {type(target).__name__}, not a RunlaneApp "
        "or a zero-argument callable returning one"
    )


def _takes_no_arguments(target: object) -> bool:
    try:
        signature = inspect.signature(target)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # some builtins have no signature; let the call decide
        return True
    return all(
        parameter.default is not inspect.Parameter.empty
        or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for parameter in signature.parameters.values()
    )
