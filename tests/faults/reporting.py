"""Figures lines collected during a pytest session, printed at its end by ``conftest.py``."""

from __future__ import annotations

from tests.faults.figures import Figures

LINES: list[str] = []


def verify(figures: Figures) -> None:
    """Keep the figures for the summary, then fail with every broken check if any."""
    LINES.append(figures.line() + ("" if not figures.failures else "  (FAILED)"))
    figures.verify()
