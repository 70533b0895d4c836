"""A split's subjobs' oids as runs: what a select of its subjobs reads instead of an oid
chunk per match.

The split stores its subjobs one after the other in one transaction, so their oids
mostly follow each other (a storage hands oids out in order; only another writer's
new objects in between break a run). Kept as ``(first id, first oid, count)`` in the
master's index record, which a select reads first anyway, they give each match's oid
with no record read at all: at 100,000 subjobs, 100 scattered matches otherwise read
~100 oid chunks (as many records as the matches themselves). Written once, at the
split, by its one writer (never merged); too many runs (oids given out interleaved
with another writer's) are not kept, and the oid chunks answer alone.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from ZODB.utils import p64, u64

Run = tuple[int, int, int]  # first id, first oid (as an integer), how many
MAX_RUNS = 64  # more than this: not kept (each costs the index record ~20 bytes)


def runs_of(oids: Sequence[bytes]) -> tuple[Run, ...]:
    """The runs of consecutive oids of ids 0, 1, ...; () if there are too many."""
    runs: list[list[int]] = []
    for job_id, oid in enumerate(oids):
        value = u64(oid)
        if runs and runs[-1][1] + runs[-1][2] == value:
            runs[-1][2] += 1
            continue
        if len(runs) == MAX_RUNS:
            return ()
        runs.append([job_id, value, 1])
    return tuple((first, oid, n) for first, oid, n in runs)


def oid_in(runs: Sequence[Run], job_id: int) -> bytes | None:
    """The oid the runs give ``job_id`` (None: no run holds it)."""
    at = bisect_right(runs, job_id, key=lambda run: run[0]) - 1
    if at < 0:
        return None
    first, oid, n = runs[at]
    return p64(oid + job_id - first) if job_id < first + n else None
