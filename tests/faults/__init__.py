"""The fault suite: real worker processes against a real PostgreSQL cluster (and moto's SQS server).

Each scenario injects one kind of fault (SIGKILL, SIGSTOP, database restarts, commit-then-fail
storage writes, poison handlers, duplicate wakeups, skewed clocks, SIGTERM, hostile input) and
checks the run histories against a side-effect ledger. Run it with ``python -m tests.faults``
(CI-sized) or ``python -m tests.faults --full``; pytest runs the CI-sized form from ``test_*.py``.
See docs/reliability.md for the guarantees and the figures.
"""
