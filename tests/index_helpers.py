"""A repository for the status index tests: a big master, some of it failed."""

from __future__ import annotations

from collections.abc import Iterable

from ganga_like.engine.core import _split
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.splitters import ArgSplitter
from ganga_like.repository.storage import Connection


def big_master(conn: Connection, n: int, failed: Iterable[int], plain: bool = False) -> Job:
    """Job 0: a master of ``n`` subjobs, those in ``failed`` failed (and with ``plain``,
    ``n`` plain jobs after it, the same ids failed), in one transaction."""
    failed = set(failed)
    master = Job(name="big", splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))

    def fail(job: Job) -> None:
        set_status(job, "submitting")
        set_status(job, "failed")

    def work() -> None:
        conn.jobs.add(master)
        _split(master)
        for i in sorted(failed):
            fail(master._subjobs[i])
        for i in range(n) if plain else ():
            job = Job(name=f"p{i}")
            conn.jobs.add(job)
            if i in failed:
                fail(job)

    conn.write(work)
    return master
