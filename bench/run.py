"""Benchmark runlane (and optionally Procrastinate and PgQueuer) on a private PostgreSQL cluster.

    python bench/run.py [--n 10000] [--peers] [--only runlane|pgqueuer|procrastinate]
                        [--rounds 1] [--json-only] [--rss-runs 100000] [--latency-seconds 10]
                        [--durable]

Starts its own cluster (tests/support/pg_cluster.py) on 127.0.0.1, gives every workload a fresh
database copied from a template (empty, or pre-filled with N due runs), runs each workload in a
fresh process of that system's interpreter (runlane: this interpreter; peers:
bench/.peers-venv, made by bench/peers/setup.sh), and prints one JSON line per figure, then a
table per workload with each runlane figure as a ratio to each peer. With ``--rounds K`` the
systems' workloads run K times, interleaved (round 1: runlane, then each peer; round 2 starts with
the next system, ...), and the table shows each figure's median with the range of the per-round
ratios, so a busy machine's drift shows instead of deciding a ratio. The cluster is stopped and
deleted at exit. Method and latest results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from tests.support.pg_cluster import PostgresCluster  # noqa: E402

from bench.common import host_cpu_ticks, steal_pct  # noqa: E402
from bench.report import markdown_tables  # noqa: E402

BENCH = ROOT / "bench"
PEERS_VENV = BENCH / ".peers-venv"
RESULTS_DIR = ROOT / ".bench"
SYSTEMS = ("runlane", "pgqueuer", "procrastinate")
# Durable settings for --durable (the default cluster has fsync, synchronous_commit and
# full_page_writes off, like the test cluster).
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


@dataclass
class Step:
    """One workload run in a fresh process against a fresh copy of ``template``."""

    name: str
    workload: str
    template: str  # "empty", "full" or "rss"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class System:
    name: str
    python: str
    script: Path
    drain_settings: list[dict[str, Any]]


def system_table(args: argparse.Namespace) -> dict[str, System]:
    peers_python = str(PEERS_VENV / "bin" / "python")
    runlane_settings = [parse_setting(token) for token in args.drain_settings.split(",") if token]
    if not runlane_worker_has_batch_size():
        runlane_settings = [s for s in runlane_settings if "batch_size" not in s]
    return {
        "runlane": System("runlane", sys.executable, BENCH / "runlane_workloads.py", runlane_settings),
        "pgqueuer": System(
            "pgqueuer",
            peers_python,
            BENCH / "peers" / "pgqueuer_workloads.py",
            [{"batch_size": 10}, {"batch_size": 100}],
        ),
        "procrastinate": System(
            "procrastinate",
            peers_python,
            BENCH / "peers" / "procrastinate_workloads.py",
            [{"concurrency": 10}],
        ),
    }


def parse_setting(token: str) -> dict[str, Any]:
    """``c100b10`` -> ``{"concurrency": 100, "batch_size": 10}``."""
    match = re.fullmatch(r"c(\d+)(?:b(\d+))?", token.strip())
    if match is None:
        raise SystemExit(f"--drain-settings: {token!r} is not like c50 or c100b10")
    setting: dict[str, Any] = {"concurrency": int(match.group(1))}
    if match.group(2):
        setting["batch_size"] = int(match.group(2))
    return setting


def runlane_worker_has_batch_size() -> bool:
    from runlane import Runlane

    return "batch_size" in inspect.signature(Runlane.worker).parameters


def plan(system: System, args: argparse.Namespace, round_number: int = 1) -> list[Step]:
    """The steps of one round. The RSS drain is not compared with a peer and takes longest: round 1 only."""
    steps = [
        Step("enqueue_one", "enqueue_one", "empty"),
        Step("enqueue_batch", "enqueue_batch", "empty"),
    ]
    for setting in system.drain_settings:
        label = "_".join(f"{k[0]}{v}" for k, v in setting.items())
        steps.append(Step(f"drain_1p_{label}", "drain", "full", {"processes": 1, **setting}))
    steps.append(Step("drain_2p", "drain", "full", {"processes": 2}))  # best 1p setting, filled in later
    latency = {"rate": args.latency_rate, "seconds": args.latency_seconds, "concurrency": 10}
    steps.append(Step("latency", "latency", "empty", latency))
    if system.name == "runlane":
        fast = {**latency, "poll_interval": "50ms", "label": "latency_poll_50ms"}
        steps.append(Step("latency_poll_50ms", "latency", "empty", fast))
        if round_number == 1:
            steps.append(Step("rss", "rss", "rss", {"total": args.rss_runs, "concurrency": 10}))
    if args.workloads:
        wanted = set(args.workloads.split(","))
        steps = [step for step in steps if step.workload in wanted or step.name in wanted]
    return steps


# --------------------------------------------------------------------------- databases


def admin(cluster: PostgresCluster) -> psycopg.Connection[Any]:
    return psycopg.connect(cluster.libpq_dsn_for("postgres"), autocommit=True, connect_timeout=10)


def create_database(cluster: PostgresCluster, name: str, template: str | None = None) -> None:
    with admin(cluster) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        if template is None:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        else:
            statement = sql.SQL("create database {} template {}")
            conn.execute(statement.format(sql.Identifier(name), sql.Identifier(template)))
        conn.execute("checkpoint")


def drop_database(cluster: PostgresCluster, name: str) -> None:
    with admin(cluster) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def vacuum(cluster: PostgresCluster, name: str) -> None:
    with psycopg.connect(cluster.libpq_dsn_for(name), autocommit=True, connect_timeout=10) as conn:
        conn.execute("vacuum (analyze)")


# --------------------------------------------------------------------------- running workloads


class Runner:
    def __init__(self, cluster: PostgresCluster, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.args = args
        self.figures: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.drain_2p_settings: dict[str, dict[str, Any]] = {}

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def invoke(
        self, system: System, workload: str, database: str, options: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        argv = [
            system.python,
            str(system.script),
            workload,
            f"--dsn={self.cluster.libpq_dsn_for(database)}",
            f"--admin-dsn={self.cluster.libpq_dsn_for('postgres')}",
            f"--database={database}",
            f"--n={self.args.n}",
            *(f"--{k.replace('_', '-')}={v}" for k, v in options.items()),
        ]
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        if proc.stderr.strip():
            sys.stderr.write(proc.stderr)
        return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"system"')]

    def timeout_for(self, runs: int) -> float:
        return 180.0 + runs * 0.06 + float(self.args.latency_seconds) * 3

    def prepare(self, system: System) -> None:
        """Templates: an empty migrated database, one with N due runs, one with --rss-runs."""
        empty = f"tmpl_{system.name}_empty"
        create_database(self.cluster, empty)
        self.invoke(system, "setup", empty, {}, timeout=300)
        fills = [("full", self.args.n)]
        if system.name == "runlane":
            fills.append(("rss", self.args.rss_runs))
        for kind, runs in fills:
            name = f"tmpl_{system.name}_{kind}"
            create_database(self.cluster, name, template=empty)
            started = time.monotonic()
            self.invoke(system, "prefill", name, {"n": runs}, timeout=self.timeout_for(runs))
            vacuum(self.cluster, name)
            self.log(f"{system.name}: template {kind} with {runs} runs in {time.monotonic() - started:.0f}s")

    def prepare_system(self, system: System) -> bool:
        """Build ``system``'s templates once for every round; False (and a recorded failure) if not."""
        self.log(f"{system.name}: preparing templates")
        try:
            self.prepare(system)
        except Exception as exc:
            self.failures.append(f"{system.name} setup: {exc}")
            self.log(f"{system.name}: setup FAILED: {exc}")
            return False
        return True

    def run_round(self, system: System, round_number: int) -> None:
        for step in plan(system, self.args, round_number):
            if step.name == "drain_2p":
                # Chosen in round 1 and kept, so every round's drain_2p is the same configuration.
                best = self.drain_2p_settings.setdefault(system.name, self.best_drain_setting(system.name))
                step.options.update(best)
            database = f"bench_{system.name}_{step.name}"
            create_database(self.cluster, database, template=f"tmpl_{system.name}_{step.template}")
            runs = self.args.rss_runs if step.template == "rss" else self.args.n
            started = time.monotonic()
            ticks = host_cpu_ticks()
            try:
                figures = self.invoke(system, step.workload, database, step.options, self.timeout_for(runs))
            except Exception as exc:  # one failed workload must not lose the others
                self.failures.append(f"{system.name} {step.name} round {round_number}: {exc}")
                self.log(f"{system.name} {step.name} round {round_number}: FAILED: {exc}")
                continue
            finally:
                drop_database(self.cluster, database)
            steal = steal_pct(ticks, host_cpu_ticks())
            for fig in figures:
                fig["step"] = step.name
                fig["round"] = round_number
                fig["host_steal_pct"] = steal
                print(json.dumps(fig), flush=True)
            self.figures.extend(figures)
            took = time.monotonic() - started
            self.log(f"{system.name} {step.name} round {round_number}: {len(figures)} figures in {took:.0f}s")

    def run(self, systems: Sequence[System]) -> None:
        """Every round runs each prepared system once; the starting system rotates between rounds."""
        ready = [system for system in systems if self.prepare_system(system)]
        for round_number in range(1, self.args.rounds + 1):
            shift = (round_number - 1) % len(ready) if ready else 0
            for system in ready[shift:] + ready[:shift]:
                self.run_round(system, round_number)

    def best_drain_setting(self, system: str) -> dict[str, Any]:
        best: dict[str, Any] = {}
        top = float("-inf")
        for fig in self.figures:
            mine = fig["system"] == system and fig["workload"] == "drain_1p"
            if mine and fig["figure"] == "throughput" and fig["value"] > top:
                top = fig["value"]
                detail = fig.get("detail") or {}
                best = {
                    k: v
                    for k, v in detail.items()
                    if k in ("concurrency", "batch_size") and isinstance(v, int)
                }
        return best


# --------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="runs per workload (default 10000)")
    parser.add_argument("--peers", action="store_true", help="also measure Procrastinate and PgQueuer")
    parser.add_argument("--only", choices=SYSTEMS, help="measure one system only")
    parser.add_argument("--json-only", action="store_true", help="print the JSON lines, no table")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every system's workloads this many times, interleaved; tables show medians (default 1)",
    )
    parser.add_argument("--rss-runs", type=int, default=0, help="runs in the RSS drain (default 10 x n)")
    parser.add_argument("--latency-rate", type=float, default=200.0, help="runs/s (default 200)")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument(
        "--drain-settings",
        default="c10,c50,c100,c100b10,c100b100,c200b100",
        help="runlane worker settings for the 1-process drain: cN = concurrency, bN = batch_size",
    )
    parser.add_argument(
        "--save", type=Path, default=RESULTS_DIR / "latest.jsonl", help="where to keep the JSON lines"
    )
    parser.add_argument("--durable", action="store_true", help="fsync etc. on (default: off)")
    parser.add_argument(
        "--workloads",
        default="",
        help="comma-separated workloads or step names to run (default: all), e.g. enqueue_one,latency",
    )
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be positive")
    if args.rounds < 1:
        parser.error("--rounds must be positive")
    args.rss_runs = args.rss_runs or 10 * args.n
    if args.rss_runs < args.n:
        parser.error("--rss-runs must be at least --n")
    return args


def ensure_peers_venv() -> None:
    if (PEERS_VENV / "bin" / "python").exists():
        return
    print("[bench] creating bench/.peers-venv (bench/peers/setup.sh)", file=sys.stderr, flush=True)
    subprocess.run(["bash", str(BENCH / "peers" / "setup.sh")], check=True, timeout=900)


@contextmanager
def cluster_for(args: argparse.Namespace) -> Iterator[PostgresCluster]:
    settings = DURABLE if args.durable else {}
    with PostgresCluster(database="postgres", settings=settings) as cluster:
        yield cluster


def environment(cluster: PostgresCluster, args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    with admin(cluster) as conn:
        row = conn.execute("show server_version").fetchone()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "command": "python bench/run.py " + shlex.join(argv),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgres": row[0] if row else "?",
        "cluster_settings": {**cluster.settings},
        "n": args.n,
        "rss_runs": args.rss_runs,
        "rounds": args.rounds,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    peers = ["pgqueuer", "procrastinate"] if args.peers else []
    names = [args.only] if args.only else ["runlane", *peers]
    if any(name != "runlane" for name in names):
        ensure_peers_venv()
    table = system_table(args)
    with cluster_for(args) as cluster:
        env = environment(cluster, args, argv)
        print(json.dumps({"environment": env}), file=sys.stderr, flush=True)
        runner = Runner(cluster, args)
        runner.run([table[name] for name in names])
    args.save.parent.mkdir(parents=True, exist_ok=True)
    with args.save.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"environment": env}) + "\n")
        fh.writelines(json.dumps(fig) + "\n" for fig in runner.figures)
    if not args.json_only:
        peers = [name for name in names if name != "runlane"]
        print(f"\n## Results (`{env['command']}`)\n")
        print(
            f"{env['cpus']} CPUs ({env['cpu']}), Python {env['python']}, PostgreSQL {env['postgres']}, "
            f"cluster settings {env['cluster_settings']}"
        )
        print(markdown_tables(runner.figures, peers))
    for failure in runner.failures:
        print(f"[bench] FAILED: {failure}", file=sys.stderr)
    return 1 if runner.failures else 0


if __name__ == "__main__":
    sys.exit(main())
