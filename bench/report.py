"""Figures -> tables: each runlane figure beside each peer's, with the ratio runlane / peer.

With several rounds (``bench/run.py --rounds K``) each figure is the median of its rounds, and the
ratio column also shows the lowest and highest of the per-round ratios.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

Figure = dict[str, Any]

WORKLOAD_ORDER = ("enqueue_one", "enqueue_batch", "drain_1p", "drain_2p", "latency", "rss")
# Which peer workload a runlane workload is compared with, when the names differ.
PEER_WORKLOAD = {"latency_poll_50ms": "latency"}
# Per system and multi-setting workload, the figure that picks the setting shown in the table.
SETTING_SELECTOR = "throughput"


def medians(figures: Iterable[Figure]) -> list[Figure]:
    """One figure per system, step and figure name: the median of its rounds.

    The per-round values stay in ``by_round`` (round number -> value) so that ratios can be taken
    round by round. Figures without a ``round`` (a single-round run) count as round 1.
    """
    groups: dict[tuple[str, str, str, str], list[Figure]] = {}
    for fig in figures:
        key = (fig["system"], fig["workload"], fig.get("step", ""), fig["figure"])
        groups.setdefault(key, []).append(fig)
    out: list[Figure] = []
    for rounds in groups.values():
        by_round = {int(f.get("round", 1)): float(f["value"]) for f in rounds}
        out.append({**rounds[0], "value": statistics.median(by_round.values()), "by_round": by_round})
    return out


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


def _ratio(fig: Figure, other: Figure) -> str:
    """``0.45x``, and with several rounds in common ``0.45x (0.41-0.52)``: median ratio, then its range."""
    if not other["value"]:
        return "—"
    text = f"{fig['value'] / other['value']:.2f}x"
    mine: dict[int, float] = fig.get("by_round") or {}
    theirs: dict[int, float] = other.get("by_round") or {}
    per_round = [mine[r] / theirs[r] for r in sorted(mine.keys() & theirs.keys()) if theirs[r]]
    if len(per_round) > 1:
        text += f" ({min(per_round):.2f}-{max(per_round):.2f})"
    return text


def rounds_of(figures: Iterable[Figure]) -> int:
    """How many rounds the figures come from (1 for figures without a round)."""
    return max((int(f.get("round", 1)) for f in figures), default=1)


def steal_summary(figures: Iterable[Figure]) -> str | None:
    """The host's steal time while each system's workloads ran, per round (``host_steal_pct``):
    the mean over the system's steps in that round, and their highest. None without readings."""
    steps: dict[str, dict[int, dict[str, float]]] = {}
    for fig in figures:
        steal = fig.get("host_steal_pct")
        if steal is not None:
            rounds = steps.setdefault(fig["system"], {})
            step = str(fig.get("step") or fig["workload"])
            rounds.setdefault(int(fig.get("round", 1)), {})[step] = float(steal)
    if not steps:
        return None
    parts = []
    for system, rounds in steps.items():
        per_round = [
            f"{statistics.mean(values.values()):.1f}% (max {max(values.values()):.1f}%)"
            for _, values in sorted(rounds.items())
        ]
        parts.append(f"{system} " + " / ".join(per_round))
    return (
        "Host steal time (/proc/stat, share of all CPU time) while each system's workloads ran, per "
        "round, mean over its workloads (highest): " + "; ".join(parts) + "."
    )


def markdown_tables(figures: Sequence[Figure], peers: Sequence[str]) -> str:
    """One markdown table per workload: runlane's figure, each peer's, and runlane / peer.

    Values are medians over the rounds; the drain setting shown is the one with the best median.
    """
    rounds = rounds_of(figures)
    kept = best_settings(medians(figures))
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
                row.append(_ratio(fig, other))
            out.append("| " + " | ".join(row) + " |")
    out.append(
        "\nratio = runlane / peer. For `better = higher` (throughput) a ratio above 1 means runlane is "
        "ahead; for `better = lower` (tx, WAL, CPU, latency, RSS) a ratio below 1 means runlane is ahead."
    )
    if rounds > 1:
        out.append(
            f"Each value is the median of {rounds} interleaved rounds; a ratio's brackets give the lowest "
            "and highest of the per-round ratios (runlane's round r against the peer's round r)."
        )
    steal = steal_summary(figures)
    if steal is not None:
        out.append(steal)
    return "\n".join(out)
