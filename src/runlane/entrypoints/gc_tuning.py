"""Cyclic garbage collector settings for a long-running worker process.

A worker imports SQLAlchemy, psycopg, pydantic, the runtime and the app before it claims anything:
about 85,000 objects that live as long as the process. CPython's full collections scan all of them
every time, and its young collections run every 700 net container allocations, which a worker
with a batch of runs in flight passes all the time. In a 10,000-run drain (c200/b100, one
process, the development cluster) that was 6 full collections of 40-56 ms each (a pause of the
whole worker) and about 650 young ones: 35-47 us of CPU per run, 13-15% of the worker's.
``tune_worker_gc`` cut it to under 1 us (docs/performance.md, "Tuning", "Garbage collection").

The collector still runs: reference counting frees frozen objects as before, and cycles made
after the tuning are collected as before, only less often. A cycle made of objects alive at the
tuning is never collected (``gc.freeze``); the first collection frees what startup left behind.
"""

import gc

# Young collections run when net container allocations pass this. Python 3.11's default is 700; at
# 7,000 a drain's in-flight runs no longer trigger them batch after batch.
YOUNG_GENERATION_THRESHOLD = 7_000


def tune_worker_gc() -> int:
    """Collect, freeze what is alive (the startup heap), raise the young threshold; objects frozen.

    Leaves a collector that was disabled (``gc.disable()`` or a zero threshold) as it is: the
    process chose that itself. Call it once startup is done, before the worker claims.
    """
    young, middle, old = gc.get_threshold()
    if not gc.isenabled() or young == 0:
        return 0
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(young, YOUNG_GENERATION_THRESHOLD), middle, old)
    return gc.get_freeze_count()
