"""Slurm's job states, and what each means for a subjob: the one table.

Slurm says where each task of an array is (``squeue``'s state and, while it waits,
its Reason). :data:`STATES` maps every state Slurm reports to the subjob status it
stands for; the actor turns it into the contract's events, and docs/backends.md shows
the table generated from here (``tests/backends/test_slurm_states.py`` checks the copy).
Slurm's state and reason are the subjob's backend detail (``Slurm PENDING (Priority)``),
and the reason, in words, its note (what ``why()`` shows).

Pure: no process, no Slurm.
"""

from __future__ import annotations

from typing import NamedTuple

from ganga_like.backends import base
from ganga_like.backends.runtime import outcome
from ganga_like.backends.runtime import status_file as sf
from ganga_like.status import Status


class SlurmState(NamedTuple):
    status: Status  # what the subjob is while (or once) Slurm says this
    final: bool  # the task has ended in Slurm
    meaning: str


S = Status
STATES: dict[str, SlurmState] = {
    "PENDING": SlurmState(S.SUBMITTED, False, "waiting in Slurm's queue; the Reason says why"),
    "CONFIGURING": SlurmState(S.SUBMITTED, False, "given its node, which is being readied"),
    "REQUEUED": SlurmState(S.SUBMITTED, False, "put back in the queue (by an administrator, or "
                                               "after a node failure): it will run again"),
    "REQUEUE_HOLD": SlurmState(S.SUBMITTED, False, "put back in the queue and held"),
    "RUNNING": SlurmState(S.RUNNING, False, "its batch script runs (the subjob is running once "
                                           "its wrapper has started the payload)"),
    "SUSPENDED": SlurmState(S.RUNNING, False, "suspended by Slurm or an administrator; it resumes later"),
    "STOPPED": SlurmState(S.RUNNING, False, "stopped by a signal; it resumes on SIGCONT"),
    "SIGNALING": SlurmState(S.RUNNING, False, "being signalled"),
    "COMPLETING": SlurmState(S.RUNNING, False, "ended; Slurm is ending what is left of its processes"),
    "COMPLETED": SlurmState(S.COMPLETED, True, "ended with exit code 0"),
    "FAILED": SlurmState(S.FAILED, True, "ended with a non-zero exit code"),
    "TIMEOUT": SlurmState(S.FAILED, True, "reached its time limit (Slurm(time=...)): Slurm ended it"),
    "OUT_OF_MEMORY": SlurmState(S.FAILED, True, "used more memory than it asked for "
                                                "(Slurm(memory=...)): Slurm ended it"),
    "NODE_FAIL": SlurmState(S.FAILED, True, "its node failed"),
    "BOOT_FAIL": SlurmState(S.FAILED, True, "its node could not be booted"),
    "DEADLINE": SlurmState(S.FAILED, True, "reached its deadline (--deadline) before it ended"),
    "PREEMPTED": SlurmState(S.FAILED, True, "preempted by work of higher priority (and not requeued)"),
    "SPECIAL_EXIT": SlurmState(S.FAILED, True, "held after a special exit value"),
    "CANCELLED": SlurmState(S.KILLED, True, "cancelled with scancel (ganga_like's kill, you, or an "
                                            "administrator)"),
    "REVOKED": SlurmState(S.KILLED, True, "removed by a sibling cluster of a federation"),
}

# Slurm's most common Reasons for a waiting task, in words (the rest are shown as Slurm
# names them: ``squeue --help`` and Slurm's documentation list them all).
REASONS: dict[str, str] = {
    "Priority": "other jobs of higher priority are ahead of it",
    "Resources": "waiting for the resources it asked for to become free",
    "JobArrayTaskLimit": "its array runs at most Slurm(max_running=...) tasks at once",
    "Dependency": "waiting for a job it depends on",
    "DependencyNeverSatisfied": "a job it depends on failed: it will never run",
    "BeginTime": "its start time has not come yet",
    "JobHeldUser": "held by you (scontrol release <id>)",
    "JobHeldAdmin": "held by an administrator",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition is inactive",
    "PartitionTimeLimit": "its time limit is above its partition's",
    "PartitionNodeLimit": "it asks for more nodes than its partition allows",
    "ReqNodeNotAvail": "a node it needs is not available",
    "QOSMaxJobsPerUserLimit": "your QOS allows no more running jobs now",
    "AssocMaxJobsLimit": "your account allows no more running jobs now",
    "AssocGrpCpuLimit": "your account's CPU limit is reached",
    "BadConstraints": "its constraints cannot be met",
    "InvalidAccount": "its account is not valid",
    "InvalidQOS": "its QOS is not valid",
}

FINAL = frozenset(name for name, state in STATES.items() if state.final)
ACTIVE = frozenset(STATES) - FINAL


def detail(state: str, reason: str = "") -> str:
    """The backend detail for a Slurm state: ``Slurm PENDING (Priority)``, as squeue shows it."""
    reason = "" if reason in ("", "None", "(null)") else reason
    return f"Slurm {state}" + (f" ({reason})" if reason else "")


def explain(state: str, reason: str = "") -> str:
    """The note of a task in this state, in words: why it waits (its Reason), or what the
    state means. Without the task's id, so that ``why()`` groups subjobs that wait alike."""
    reason = "" if reason in ("", "None", "(null)") else reason
    if reason:
        return REASONS.get(reason.split(",")[0], f"waiting in Slurm's queue: {reason}")
    if state == "PENDING":
        return "waiting in Slurm's queue, not yet considered by its scheduler"
    known = STATES.get(state)
    return known.meaning if known is not None else f"{state}: a state this backend does not know"


def final_event(task_id: str, state: str, last: sf.StatusInfo | None, words: str = "") -> outcome.Outcome:
    """The final event of a task that ended in Slurm (``state``; '' when Slurm no longer
    knows it): the table's status, with the exit status the wrapper recorded
    (``last``: the status file's last line). ``words``: what Slurm wrote into the task's
    output (slurmstepd's error lines), added to the note of a task that did not complete."""
    kind, code, note = _final_event(task_id, state, last)
    if words and kind != base.KILLED and STATES.get(state, STATES["FAILED"]).status is not S.COMPLETED:
        note = f"{note}; Slurm wrote: {words}"
    return kind, code, note


def _final_event(task_id: str, state: str, last: sf.StatusInfo | None) -> outcome.Outcome:
    known = STATES.get(state)
    if last is not None and last.terminal:
        kind, code, note = outcome.outcome_of(last, None)
    else:
        seen = f"last status {last.state}" if last is not None else "no status line"
        kind, code, note = base.LOST, None, f"its wrapper recorded no exit status ({seen})"
    if known is None:
        said = (f"Slurm job {task_id} is in state {state}, which this backend does not know"
                if state else f"Slurm job {task_id} is no longer known to Slurm (not in squeue, "
                              f"nor in its accounting)")
        return kind, code, f"{said}; {note}"
    said = f"Slurm job {task_id} {state}: {known.meaning}"
    if known.status is S.KILLED:
        return base.KILLED, None, f"{said}; {note}"
    if known.status is S.FAILED and (kind != base.FINISHED or not code):
        return base.LOST, None, f"{said}; {note}"
    if known.status is S.FAILED:
        return kind, code, f"{note}; {said}"
    return kind, code, note


def table_markdown() -> str:
    """The state table as Markdown (docs/backends.md quotes it)."""
    rows = ["| Slurm state | subjob status | ended in Slurm | meaning |", "|---|---|---|---|"]
    rows += [f"| {name} | {s.status.value} | {'yes' if s.final else 'no'} | {s.meaning} |"
             for name, s in STATES.items()]
    return "\n".join(rows)
