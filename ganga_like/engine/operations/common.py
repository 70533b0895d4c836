"""What the verbs share: the killable statuses, leaves of a job, small helpers."""

from __future__ import annotations

import socket
from collections.abc import Collection
from typing import Any

from ...backends import base
from ...model.job import Job, index_found_wrong
from ...model.lifecycle import set_status
from ...model.slices import indexed_matches
from ...model.stream import stream_of
from ...status import Source, Status
from ..context import EngineContext

# What a kill can stop: a completing job's process is already gone (it holds
# nothing); it finishes on its own, and `completing -> killed` is not an edge.
KILLABLE = frozenset({Status.SUBMITTING, Status.SUBMITTED, Status.RUNNING})
SUBMIT_CHUNK = 1000  # subjobs per batch (per actor call, per transaction): big enough to amortise,
#                     small enough that submit() returns soon and a kill waits little for one
KILL_GRACE = 3.0
HOST = socket.gethostname()


def leaves_of(job: Job, statuses: Collection[Status]) -> list[Job]:
    """The job itself, or its subjobs, in one of ``statuses``: a master's from its index of
    subjobs by status (the matches only) when the index agrees with its counts and with
    every status it reads, else by reading every subjob."""
    wanted = {status.value for status in statuses}
    if job._subjobs is None:
        return [job] if job.status.value in wanted else []
    index = job._subjob_index
    if index is not None and index.readable:
        found = indexed_matches(index, job._subjobs, wanted, counted=job.subjobs._counted,
                                master=job)
        if found is not None:
            return found
        index_found_wrong(job)  # (says so in the log; rebuilt at the next start)
    return [sj for sj in job._subjobs.values() if sj._status in wanted]


def failed_handle(spec: base.SubjobSpec, error: str) -> base.Handle:
    return base.Handle(backend="?", fqid=spec.fqid, error=error, attempt=spec.attempt)


def active_set(root: Any) -> Any:
    if getattr(root, "active_ids", None) is None:
        from BTrees.IIBTree import IITreeSet

        root.active_ids = IITreeSet()
    return root.active_ids



def stop_stream(ctx: EngineContext, job: Job, why: str) -> None:
    """Before a verb that ends a master's work: stop sending its subjobs (the batch in
    flight is recorded first, so the verb finds it; those not sent stay ``new``)."""
    top = job.master or job
    if top._counts is not None and stream_of(top) is not None:
        ctx.streams.stop(top, why)


def begin_attempt(target: Job, note: str, source: Source, auto: bool = False) -> None:
    """Move a leaf to ``submitting`` for a new run: a new attempt number (events of
    earlier runs are then ignored) and none of the last run's outcome left behind."""
    target.submit_counter += 1
    if auto:
        target.auto_resubmit_count += 1
    target.exit_code = None
    target.reason = ""
    set_status(target, Status.SUBMITTING, note, source=source, host=HOST)


def current_handle(leaf: Job) -> base.Handle | None:
    """The leaf's handle if it belongs to its current attempt (a leaf caught in
    ``submitting`` by a resubmit still holds the previous run's), else None."""
    if not leaf.handle:
        return None
    handle = base.Handle.from_tuple(leaf.handle)
    return handle if handle.attempt == leaf.submit_counter else None


def handle_to_stop(leaf: Job, backend: str) -> base.Handle:
    """What to ask a backend to stop for this leaf: its current handle, or one naming
    only the subjob (the backend drops it from its queue, or finds nothing running)."""
    return current_handle(leaf) or base.Handle(backend, leaf.fqid, workdir=leaf.workdir,
                                               attempt=leaf.submit_counter)
