"""remove(): kill first; remove(force=True) records what it may leave running."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from BTrees.IOBTree import IOBTree

from ...errors import KillNotConfirmed, OperationRefused
from ...model.job import Job
from ...model.lifecycle import set_status
from ...repository.ledger import Ledger
from ...status import ACTIVE, FROZEN, Source, Status
from ..context import EngineContext
from .common import HOST, KILLABLE, active_set, handle_to_stop, leaves_of, stop_stream
from .kill import kill_leaves


def remove(ctx: EngineContext, job: Job, force: bool = False) -> None:
    if job.master is not None:
        raise OperationRefused(job.fqid, "remove", job.status.value,
                               f"subjobs are not removable alone; remove the master "
                               f"jobs({job.master.id}) or kill this subjob")
    stop_stream(ctx, job, "remove")
    ctx.store.refresh()
    if job.status is Status.TEMPLATE:
        delete(ctx, job, ctx.store.templates)
        return
    active = leaves_of(job, KILLABLE)
    if active:
        relaxed = ctx.store.mode_of(job) == "relaxed"
        if relaxed and force:
            record_leaks(ctx, job, active, "removed without a kill (relaxed, force)")
        else:
            reason = "remove(force=True): kill not confirmed" if force else ""
            unconfirmed = kill_leaves(ctx, job, active, ledger_reason=reason)
            if unconfirmed:
                raise KillNotConfirmed(
                    f"not removed: {len(unconfirmed)} subjob(s) could not be confirmed "
                    f"stopped ({', '.join(unconfirmed[:5])}); remove(force=True) removes "
                    f"anyway and records them in the leak ledger",
                    job_id=job.fqid, status=job.status.value)
    delete(ctx, job, ctx.store.jobs)


def record_leaks(ctx: EngineContext, job: Job, held: list[Job], reason: str) -> None:
    name = type((job.master or job).backend).__name__

    def work() -> None:
        ledger = Ledger(ctx.store.main)
        for leaf in held:
            ledger.record(leaf, reason, handle_to_stop(leaf, name).to_tuple())

    ctx.store.write(work, note=f"ledger {job.fqid}")


def delete(ctx: EngineContext, job: Job, registry: Any) -> None:
    previous = job.status
    workdir = job.workspace
    when = time.time()

    def work() -> None:
        if job.status is not Status.TEMPLATE:  # a single job or a master alike
            if job.status in FROZEN:
                set_status(job, Status.COMPLETED if job.status is Status.COMPLETED_FROZEN
                           else Status.FAILED, "unfrozen to be removed", source=Source.USER)
            if job.status in ACTIVE:
                set_status(job, Status.UNKNOWN, "removed while active (forced)", source=Source.USER)
            set_status(job, Status.REMOVED, "remove()", source=Source.USER, host=HOST)
        registry.discard(job)
        root = ctx.store.main.root
        active_set(root).discard(job.id) if job.id is not None else None
        if job.id is not None and previous is not Status.TEMPLATE:
            if root.removals is None:
                root.removals = IOBTree()
            # Until the queue log has the line: a crash before it is written is repaired.
            root.removals[job.id] = (when, job.fqid, previous.value, "remove()")

    ctx.store.write(work, note=f"remove {job.fqid}")
    if workdir and os.path.isdir(workdir):
        shutil.rmtree(workdir, ignore_errors=True)

