"""The one function that changes a status.

``set_status`` checks the transition table (``ganga_like.status``), stamps the
time, appends ``(time, from, to, note, source, cause)`` to the job's history (the
cause: the one the write under way carries, ``writes.current_cause()``), keeps the
master's per-status counts in step, and reports the change to the write under way
in this thread (``writes.current_write()``: the repository's write helper hands
them to the queue log once the transaction has committed). Nothing else assigns a
status.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import OperationRefused
from ..status import (
    MASTER_REMOVAL,
    Cause,
    Source,
    Status,
    check_transition,
    history_entries,
)
from .jobtime import stamp_names
from .status_index import jobs_index
from .stream import derived_status
from .writes import Change, current_cause, current_write

if TYPE_CHECKING:  # pragma: no cover
    from .job import Job

HISTORY_SHOWN_IN_ERRORS = 3
REMOVED_MASTER = tuple(s.value for s in MASTER_REMOVAL)
# A master's derived moves among these, back and forth, are its slots being refilled.
UNDER_WAY = frozenset(s.value for s in (Status.SUBMITTED, Status.RUNNING, Status.COMPLETING))
# A move to one of these keeps its note as the job's reason (why it failed, was rolled
# back, lost or killed).
ENDS_WITH_REASON = frozenset((Status.FAILED, Status.NEW, Status.UNKNOWN, Status.KILLED))


def _report(change: Change) -> None:
    write = current_write()
    if write is not None:
        write.changes.append(change)


def set_status(
    job: Job,
    target: Status | str,
    note: str = "",
    source: Source | str = Source.SYSTEM,
    now: float | None = None,
    host: str = "",
) -> Status:
    """Move ``job`` to ``target``; raise InvalidTransition if the table forbids it.

    A master's status is derived from its subjobs and is never set here, but for its
    removal (``MASTER_REMOVAL``: unknown, when removed while active, then removed),
    which is its own. Returns the previous status.
    """
    dst = Status.parse(target)
    is_master = job._counts is not None  # (Job.is_master, without its descriptor)
    if is_master and dst not in MASTER_REMOVAL:
        raise OperationRefused(
            job.fqid, "set the status", job.status.value,
            "a master's status is derived from its subjobs; change theirs",
        )
    src = job.status if is_master else Status.parse(job._status)
    check_transition(job.fqid, src, dst,
                     lambda: history_entries(job.history[-HISTORY_SHOWN_IN_ERRORS:]))
    when = _time.time() if now is None else now
    # Stored as the plain string; a string that names no Source is an error.
    who = source.value if isinstance(source, Source) else Source(source).value
    cause = current_cause()
    stored = None if cause is None else cause.stored()
    master = job.master
    old, new = src.value, dst.value
    if master is not None:
        before = derived_status(master)
        master._counts.move(old, new, when=when,  # first: the step that can refuse
                            stamps=stamp_names(old, new, job.submit_counter > 1))
    job._status = new
    job.history = job.history + ((when, old, new, note, who, stored),)
    if note and dst in ENDS_WITH_REASON:
        job.reason = note
    fqid = job.fqid
    _report(Change(when, fqid, old, new, note, host, cause))
    moved = master is not None and _derive(
        master, before, when, host, lambda: f"since subjob {fqid} became {new} (was {old})")
    _file(job, new, with_master=moved)
    return src


def _derive(master: Job, before: Status, when: float, host: str,
            why: Callable[[], str]) -> bool:
    """After a change to what ``master``'s status is derived from: record its derived
    move, if it moved from ``before`` (``why()``: the reason, as a user reads it: which
    subjob, and what it became); whether it moved. The move names the change's cause."""
    if master._status in REMOVED_MASTER:  # a removed master's status is its own: not derived
        return False
    after = derived_status(master)
    if after is before:
        return False
    cause = current_cause()
    reason = why()
    derived = None if cause is None else Cause("derived", cause.id, cause)
    _record_derived(master, (when, before.value, after.value, reason, Source.DERIVED.value,
                             None if derived is None else derived.stored()))
    _report(Change(when, master.fqid, before.value, after.value, reason, host, derived))
    return True


def _file(job: Job, status: str, with_master: bool = True) -> None:
    """Keep the status indexes (``model.status_index``) in this transaction: the job, now
    ``status``, in its master's index, or in the repository's (not stored yet: nothing to
    keep), and, with
    ``with_master``, its master in the repository's under its derived status. A master
    whose derived status did not move is filed where it was: ``set_status`` files it only
    when it moved (a subjob's every change filed it again, a lookup of the root's index
    and a read of its chunk for nothing, at each of the 40,000 changes of a 10,000-subjob
    run)."""
    master = job.master
    index = jobs_index(job._p_jar) if master is None else master._subjob_index
    if index is not None and job.id is not None:
        index.move(job.id, status)
    if with_master and master is not None and master.id is not None \
            and master._status not in REMOVED_MASTER:
        _file(master, master._current_status().value)


def master_moved(master: Job, before: Status, why: str) -> None:
    """After a change to what a master's status is derived from besides its counts (its
    submission's stream stopped or ended: ``model/stream.py``): record its derived move,
    if it moved, as ``set_status`` does, and file it in the status index."""
    if _derive(master, before, _time.time(), "", lambda: why):
        _file(master, master._current_status().value)


def _record_derived(master: Job, entry: tuple) -> None:
    """Add a derived move to the master's history; one between two statuses of work
    under way (``UNDER_WAY``) that undoes the master's last entry, itself derived,
    takes that entry back instead (the queue log keeps both).

    A master whose subjobs run a few at a time flips between ``running`` and
    ``submitted`` each time its slots are refilled: an entry per flip made its
    history, and so its record, which every batch of the monitor rewrites, grow
    with the run (quadratic over 100,000 subjobs). The story keeps its steps: a
    submission, a roll-back, an end are never taken back."""
    history = master.history
    last = history[-1] if history else None
    if last is not None and len(last) > 4 and last[4] == Source.DERIVED.value \
            and (last[1], last[2]) == (entry[2], entry[1]) and {entry[1], entry[2]} <= UNDER_WAY:
        master.history = history[:-1]
    else:
        master.history = history + (entry,)
