"""``python -m tests.faults.golden --write``: regenerate the golden histories (then commit them).

Without ``--write`` it only checks the committed files: every log replays to its recorded run and
together they cover every event type.
"""

from __future__ import annotations

import argparse
import sys

from runlane import RunEventType
from tests.faults.golden import covered_event_types, load_golden, replay
from tests.faults.golden.generate import write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.golden", description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate tests/faults/golden/*.json")
    args = parser.parse_args(argv)
    if args.write:
        for path in write():
            print(f"wrote {path}")
    runs = load_golden()
    problems = [problem for run in runs for problem in replay(run)]
    missing = set(RunEventType) - covered_event_types(runs)
    for problem in problems:
        print(problem)
    if missing:
        print("event types not covered: " + ", ".join(sorted(t.value for t in missing)))
    print(
        f"{len(runs)} golden runs, {sum(len(r.events) for r in runs)} events: "
        + ("ok" if not problems and not missing else "FAILED")
    )
    return 1 if problems or missing else 0


if __name__ == "__main__":
    sys.exit(main())
