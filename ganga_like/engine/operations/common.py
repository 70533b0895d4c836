"""What the verbs share: the killable statuses, leaves of a job, small helpers."""

from __future__ import annotations

import socket
from typing import Any

from ...backends import base
from ...model.job import Job
from ...model.lifecycle import set_status
from ...status import Source, Status

# What a kill can stop: a completing job's process is already gone (it holds
# nothing); it finishes on its own, and `completing -> killed` is not an edge.
KILLABLE = frozenset({Status.SUBMITTING, Status.SUBMITTED, Status.RUNNING})
SUBMIT_CHUNK = 2000  # specs per actor call: big enough to amortise, small enough to stream
KILL_GRACE = 3.0
HOST = socket.gethostname()


def leaves_of(job: Job, wanted: Any) -> list[Job]:
    """The job itself, or its subjobs, whose status satisfies ``wanted``."""
    if job._subjobs is not None:
        return [sj for sj in job._subjobs.values() if wanted(Status(sj._status))]
    return [job] if wanted(job.status) else []


def failed_handle(spec: base.SubjobSpec, error: str) -> base.Handle:
    return base.Handle(backend="?", fqid=spec.fqid, error=error, attempt=spec.attempt)


def active_set(root: Any) -> Any:
    if getattr(root, "active_ids", None) is None:
        from BTrees.IIBTree import IITreeSet

        root.active_ids = IITreeSet()
    return root.active_ids



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
