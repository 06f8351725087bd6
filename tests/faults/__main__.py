"""``python -m tests.faults [--full] [--only NAME,...]``: run the fault scenarios, print their figures.

One PostgreSQL cluster (and, when a scenario needs it, one moto server) serves the whole run. Each
scenario prints ``scenario=<name>: runs=N lost=0 duplicated=0 ...``; a failed scenario prints its
failed checks too, and the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from tests.faults.environment import fault_world
from tests.faults.figures import ScenarioFailed
from tests.faults.scenarios.registry import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--full", action="store_true", help="full-size parameters (slow) instead of CI")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args(argv)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = wanted - {scenario.NAME for scenario in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    form = "full" if args.full else "ci"
    print(f"fault suite ({form} form)", flush=True)
    failed: list[str] = []
    started = time.monotonic()
    with fault_world() as world:
        for scenario in SCENARIOS:
            if wanted and scenario.NAME not in wanted:
                continue
            try:
                figures = scenario.run(world, scenario.FULL if args.full else scenario.CI)
                figures.verify()
                print(figures.line(), flush=True)
            except ScenarioFailed as exc:
                failed.append(scenario.NAME)
                print(f"FAILED {exc}", flush=True)
            except Exception:
                failed.append(scenario.NAME)
                print(f"scenario={scenario.NAME}: ERROR", flush=True)
                traceback.print_exc()
    total = time.monotonic() - started
    print(
        f"fault suite ({form}): {len(failed)} failed in {total:.0f}s"
        + (f": {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
