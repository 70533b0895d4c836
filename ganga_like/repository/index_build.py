"""Building the status indexes (``model.status_index``) where they are missing or wrong.

A repository written before the indexes existed has none; one a select found wrong is
marked incomplete; one written by older code has an older layout (``LAYOUT``): each
is built again, masters' indexes included. The engine builds them when it opens
(``ensure_indexes``), before it changes any status: every status change is the
engine's, so the jobs read here keep
the statuses they are filed under. The only other writers then are clients
registering new jobs, which file them in the index being built (filing is
idempotent). The work is done in batches of ``JOB_BATCH`` jobs and ``SUBJOB_BATCH``
subjobs per transaction, so memory stays bounded and a crash midway leaves an
incomplete index, built again at the next start; until an index is complete, selects
scan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from BTrees.IOBTree import IOBTree

from ..model.job import Job
from ..model.status_index import JOBS_INDEX_KEY, LAYOUT, StatusIndex
from .storage import Connection

log = logging.getLogger(__name__)

JOB_BATCH = 1_000
SUBJOB_BATCH = 10_000


def ensure_indexes(conn: Connection) -> int:
    """Build the jobs index, and every master's, unless the repository has a complete
    one; returns how many top-level jobs were filed (0: nothing to do)."""
    zroot = conn.conn.root()
    found = zroot.get(JOBS_INDEX_KEY)
    if isinstance(found, StatusIndex) and found.readable:
        return 0
    started = time.monotonic()
    log.info("building the index of jobs by status (%s)", _why_build(found))

    def start() -> None:
        index = zroot.get(JOBS_INDEX_KEY)
        if isinstance(index, StatusIndex):
            index.reset()
        else:
            zroot[JOBS_INDEX_KEY] = StatusIndex(complete=False)

    conn.write(start, note="start building the jobs index")
    jobs = conn.root.jobs
    assert jobs is not None  # every root has one
    masters: set[int] = set()  # (a set: a retried batch files its masters again)

    def file_jobs(batch: list[tuple[int, Job]]) -> None:
        index: StatusIndex = zroot[JOBS_INDEX_KEY]
        for job_id, job in batch:
            index.add(job_id, job._current_status().value, job._p_oid)
            if job._subjobs is not None:
                masters.add(job_id)

    filed = _in_batches(conn, lambda: jobs, JOB_BATCH, file_jobs, "jobs index")
    for master_id in sorted(masters):
        build_subjob_index(conn, master_id)

    def finish() -> None:
        index: StatusIndex = zroot[JOBS_INDEX_KEY]
        index.seal_full(jobs.maxKey() + 1 if jobs else 0)  # (ranges whose last job went)
        index.complete = True

    conn.write(finish, note="jobs index complete")
    log.info("index of %d jobs (%d masters) built in %.1f s", filed, len(masters),
             time.monotonic() - started)
    return filed


def _why_build(found: object) -> str:
    if not isinstance(found, StatusIndex):
        return "written before it existed"
    if not found.current:
        return f"its layout {found.layout} is older than this code's {LAYOUT}"
    return "it was marked wrong, or a build was cut short"


def build_subjob_index(conn: Connection, master_id: int) -> None:
    """(Re)build one master's index of its subjobs by status."""
    jobs = conn.root.jobs
    assert jobs is not None

    def master() -> Job:
        found: Job = jobs[master_id]
        return found

    def start() -> None:
        top = master()
        if top._subjob_index is None:
            top._subjob_index = StatusIndex(complete=False)
        else:
            top._subjob_index.reset()
        subjobs = top._subjobs
        top._subjob_index.make_chunks(subjobs.maxKey() + 1 if subjobs else 0)

    conn.write(start, note=f"start building job {master_id}'s subjob index")

    def file_subjobs(batch: list[tuple[int, Job]]) -> None:
        index = master()._subjob_index
        assert index is not None
        for sub_id, sub in batch:
            index.add(sub_id, sub._current_status().value, sub._p_oid)

    _in_batches(conn, lambda: master()._subjobs, SUBJOB_BATCH, file_subjobs,
                f"job {master_id}'s subjob index")

    def finish() -> None:
        index = master()._subjob_index
        assert index is not None
        subjobs = master()._subjobs
        index.seal_full(subjobs.maxKey() + 1 if subjobs else 0)
        index.complete = True

    conn.write(finish, note=f"job {master_id}'s subjob index complete")


def _in_batches(conn: Connection, tree: Callable[[], IOBTree | None], size: int,
                work: Callable[[list[tuple[int, Job]]], None], what: str) -> int:
    """Run ``work`` over the items of ``tree()`` (an IOBTree), ``size`` per transaction,
    by key range (a retried batch reads its range again); returns how many items."""
    done = 0
    low: int | None = None
    while True:
        items: list[tuple[int, Job]] = []

        def batch(low: int | None = low, items: list[tuple[int, Job]] = items) -> None:
            items.clear()
            for pair in (tree() or IOBTree()).items(low):
                if len(items) == size:
                    break
                items.append(pair)
            work(items)

        conn.write(batch, note=f"build the {what}")
        conn.conn.cacheGC()  # what the batch loaded may go: memory stays bounded
        done += len(items)
        if len(items) < size:
            return done
        low = items[-1][0] + 1
