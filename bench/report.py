"""Figures -> tables: each runlane figure beside each peer's, with the ratio runlane / peer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Figure = dict[str, Any]

WORKLOAD_ORDER = ("enqueue_one", "enqueue_batch", "drain_1p", "drain_2p", "latency", "rss")
# Which peer workload a runlane workload is compared with, when the names differ.
PEER_WORKLOAD = {"latency_poll_50ms": "latency"}
# Per system and multi-setting workload, the figure that picks the setting shown in the table.
SETTING_SELECTOR = "throughput"


def best_settings(figures: Iterable[Figure]) -> list[Figure]:
    """For workloads run with several settings (drain), keep the figures of the fastest setting."""
    figures = list(figures)
    groups: dict[tuple[str, str], dict[str, list[Figure]]] = {}
    for fig in figures:
        key = (fig["system"], fig["workload"])
        groups.setdefault(key, {}).setdefault(fig.get("step", ""), []).append(fig)
    kept: list[Figure] = []
    for steps in groups.values():
        if len(steps) == 1:
            kept.extend(next(iter(steps.values())))
            continue

        def score(step_figures: Iterable[Figure]) -> float:
            return max(
                (f["value"] for f in step_figures if f["figure"] == SETTING_SELECTOR), default=float("-inf")
            )

        kept.extend(max(steps.values(), key=score))
    return kept


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _setting(fig: Figure) -> str:
    detail = fig.get("detail") or {}
    keys = ("concurrency", "batch_size", "poll_interval", "how")
    return ", ".join(f"{k}={detail[k]}" for k in keys if k in detail and k != "how")


def _order(workload: str) -> tuple[int, str]:
    family = PEER_WORKLOAD.get(workload, workload)
    return (WORKLOAD_ORDER.index(family) if family in WORKLOAD_ORDER else len(WORKLOAD_ORDER), workload)


def markdown_tables(figures: Sequence[Figure], peers: Sequence[str]) -> str:
    """One markdown table per workload: runlane's figure, each peer's, and runlane / peer."""
    kept = best_settings(figures)
    index = {(f["system"], f["workload"], f["figure"]): f for f in kept}
    runlane = [f for f in kept if f["system"] == "runlane"]
    workloads = sorted({f["workload"] for f in runlane}, key=_order)
    header = ["figure", "better", "runlane"]
    for peer in peers:
        header += [peer, f"runlane / {peer}"]
    out: list[str] = []
    for workload in workloads:
        peer_workload = PEER_WORKLOAD.get(workload, workload)
        out.append(f"\n### {workload}\n")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        for fig in (f for f in runlane if f["workload"] == workload):
            setting = _setting(fig)
            label = fig["figure"] + (f" ({setting})" if setting else "")
            row = [label, fig["better"], f"{_fmt(fig['value'])} {fig['unit']}"]
            for peer in peers:
                other = index.get((peer, peer_workload, fig["figure"]))
                if other is None:
                    row += ["—", "—"]
                    continue
                other_setting = _setting(other)
                row.append(f"{_fmt(other['value'])}" + (f" ({other_setting})" if other_setting else ""))
                row.append(f"{fig['value'] / other['value']:.2f}x" if other["value"] else "—")
            out.append("| " + " | ".join(row) + " |")
    out.append(
        "\nratio = runlane / peer. For `better = higher` (throughput) a ratio above 1 means runlane is "
        "ahead; for `better = lower` (tx, WAL, CPU, latency, RSS) a ratio below 1 means runlane is ahead."
    )
    return "\n".join(out)
