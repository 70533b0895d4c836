"""``submit_bex``: a BEX job file queued on hosts (one master, one subjob per host).

Everything that can refuse it is checked before anything is stored, in the service
under its write lock: the file's format, its ID (claimed in the queue by creating
``queue/jobs/<ID>.job``, which the file system lets only one claim do), and the hosts
(each known to the Hosts backend). A refusal is one line and leaves nothing behind.
A claim whose job is not stored (the service was killed between the two, or the job
was removed since) does not hold its ID: the next job file with that ID takes it over.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ...bex.entry import bex_id_of
from ...bex.files import QueueDir
from ...bex.jobfile import parse_job
from ...bex.submit import check_hosts, job_of
from ...errors import BexSubmitRefused
from ...model.job import Job
from ..context import EngineContext
from .hosts import list_hosts
from .submit import submit

CLAIM_MARGIN = 60.0  # seconds a claim may precede its job's creation time (clock steps)


def known_hosts(ctx: EngineContext) -> list[str]:
    """The hosts the Hosts backend knows now: what ``hosts()`` lists (the actor's book)."""
    return sorted(str(row["name"]) for row in list_hosts(ctx))


def holder_of(ctx: EngineContext, job_id: str, queue: QueueDir) -> Job | None:
    """The stored job that holds the queue's ID ``job_id`` (None: its claim is an orphan).

    A claim is made just before its job is stored, so only jobs created since (less a
    margin for clocks) are looked at, newest first."""
    try:
        since = os.stat(queue.job_file(job_id)).st_mtime - CLAIM_MARGIN
    except FileNotFoundError:
        return None
    jobs = ctx.store.jobs
    for top_id in reversed(jobs.ids()):
        job = jobs.get(top_id)
        if bex_id_of(job) == job_id:
            return job
        if (job.created or 0.0) < since:
            return None
    return None


def submit_bex(ctx: EngineContext, text: str, hosts: Sequence[str], source: str = "<job file>",
               environment: Mapping[str, str] | None = None) -> str:
    """Parse, check, claim the ID, store and submit; the new job's id."""
    bex = parse_job(text, source)
    hosts = check_hosts(bex.id, list(hosts), known_hosts(ctx))
    queue = QueueDir(ctx.store.config.bex_queue)
    if not queue.claim(bex.id, text):
        if holder_of(ctx, bex.id, queue) is not None:
            raise BexSubmitRefused(bex.id, f"the queue has a job with this ID already "
                                           f"({queue.job_file(bex.id)}): give the file another ID")
        queue.unclaim(bex.id)  # a claim a crash left before its job was stored (or removed)
        queue.claim(bex.id, text)
    try:
        job = ctx.store.register(job_of(bex, hosts))
    except BaseException:
        queue.unclaim(bex.id)
        raise
    submit(ctx, job, environment=environment)
    return job.fqid
