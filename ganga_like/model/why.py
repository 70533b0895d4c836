"""Why a job is not running, or what it is doing: ``j.why()`` and ``ganga-like why ID``.

Pure: it reads what the job stores (its status, the backend's detail and note, its
handle and history) and says it in lines. A waiting subjob's *detail* is the backend's
short reason code (``Queued``, ``ConcurrencyLimit``, ``Resources``, ``HostsNotReady``,
... as Slurm's Reason column) and its *note* the backend's one line with counts ("of
5 hosts: 2 lack label gpu, ..."); the monitor keeps both as the backend reports them
(``event_rules``: the backend note). A master groups its waiting subjobs by reason,
with counts and the subjobs' ids, as HTCondor's ``-better-analyze`` groups its jobs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..status import FINAL, Source, Status, history_entries

WAITING = frozenset({Status.SUBMITTING, Status.SUBMITTED})
"""The statuses of a subjob that waits: accepted by ganga_like, not started."""


class Explained(Protocol):
    """What ``why`` reads of a job (``model.job.Job`` has it)."""

    fqid: str
    status: Status
    backend_detail: str
    backend_note: str
    reason: str
    exit_code: int | None
    handle: tuple | None
    history: tuple


@dataclasses.dataclass(frozen=True)
class Reason:
    """One reason some subjobs wait: the backend's code and words, and who waits."""

    code: str
    note: str
    fqids: tuple[str, ...]

    def line(self) -> str:
        who = f"{len(self.fqids)} subjob{'s' * (len(self.fqids) != 1)} ({id_ranges(self.fqids)})"
        return f"{who}: {_code_and_note(self.code, self.note)}"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "note": self.note, "count": len(self.fqids),
                "subjobs": list(self.fqids)}


@dataclasses.dataclass(frozen=True)
class WhyReport:
    """What ``why`` says: a first line, then one line per reason some subjobs wait."""

    fqid: str
    status: str
    summary: str
    reasons: tuple[Reason, ...] = ()

    def lines(self) -> list[str]:
        return [self.summary] + ["  " + reason.line() for reason in self.reasons]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__  # the prompt shows the lines, not a dataclass

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.fqid, "status": self.status, "summary": self.summary,
                "reasons": [reason.as_dict() for reason in self.reasons]}


def explain(job: Explained, subjobs: Iterable[Explained] | None = None,
            now: float | None = None, to_send: str = "",
            counts: Mapping[str, int] | None = None) -> WhyReport:
    """Why ``job`` is not running or what it does; ``subjobs``: a master's, in order;
    ``to_send``: what its submission still sends (``SubmitStream.describe``), if any.

    ``counts`` (a master's subjobs per status, its ``StatusCounts``): then ``subjobs``
    need only hold waiting ones, the first of them in id order; the totals come from
    the counts, and the waiting subjobs not given are counted, not grouped."""
    now = time.time() if now is None else now
    if subjobs is None:
        if to_send and job.status is Status.NEW:  # a subjob its master's stream has yet to send
            return WhyReport(job.fqid, str(job.status),
                             f"{job.fqid} waits to be sent: its master is {to_send}")
        return WhyReport(job.fqid, str(job.status), f"{job.fqid} {_doing(job, now)}")
    return _explain_master(job, subjobs, now, to_send, counts)


def _explain_master(master: Explained, subjobs: Iterable[Explained], now: float,
                    to_send: str = "", counts: Mapping[str, int] | None = None) -> WhyReport:
    waiting: dict[tuple[str, str], list[str]] = {}
    others: dict[str, int] = {}
    total = 0
    for sub in subjobs:
        total += 1
        if sub.status in WAITING:
            code, note = _waiting_reason(sub)
            waiting.setdefault((code, note), []).append(sub.fqid)
        else:
            others[str(sub.status)] = others.get(str(sub.status), 0) + 1
    grouped = sum(len(fqids) for fqids in waiting.values())
    waits = grouped
    if counts is not None:
        total = sum(counts.values())
        waits = sum(counts.get(status.value, 0) for status in WAITING)
        others = {status: n for status, n in counts.items()
                  if n and status not in {s.value for s in WAITING}}
    rest = ", ".join(f"{count} {status}" for status, count in sorted(others.items(), key=_by_count))
    if not waits:
        summary = f"{master.fqid} is {master.status}: no subjob waits ({rest or 'no subjobs'})"
    else:
        summary = (f"{master.fqid} is {master.status}: {waits} of {total} subjob"
                   f"{'s' * (total != 1)} wait{'s' * (waits == 1)}" + (f"; {rest}" if rest else ""))
    if to_send:
        summary += f"; {to_send}"
    if waits > grouped:
        summary += (f"; the reasons of the first {grouped} waiting below, the other "
                    f"{waits - grouped} not read (j.subjobs.select(status='submitted') lists them)")
    reasons = tuple(Reason(code, note, tuple(fqids))
                    for (code, note), fqids in sorted(waiting.items(), key=lambda kv: -len(kv[1])))
    return WhyReport(master.fqid, str(master.status), summary, reasons)


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _waiting_reason(job: Explained) -> tuple[str, str]:
    if job.status is Status.SUBMITTING:
        return "Submitting", job.backend_note or "being handed to its backend"
    return job.backend_detail or "Queued", job.backend_note


def _doing(job: Explained, now: float) -> str:
    """One line: why a leaf waits, or what it is doing (after its fqid)."""
    status = job.status
    since = _since(job, now)
    if status in WAITING:
        code, note = _waiting_reason(job)
        return f"waits ({status}{since}): {_code_and_note(code, note)}"
    if status is Status.NEW:
        return "is new: not submitted yet (submit it with j.submit())"
    host = _host(job)
    where = f" on {host}" if host else ""
    if status is Status.RUNNING:
        words = _code_and_note(job.backend_detail, job.backend_note) if job.backend_note else ""
        return f"is running{where}{since}" + (f": {words}" if words else "")
    if status is Status.COMPLETING:
        return f"is completing{where}{since}: collecting its outputs and running its postprocessors"
    if status in FINAL or status is Status.UNKNOWN:
        return f"is {status}{where}{since}{_ending(job)}: nothing waits"
    return f"is {status}{since}"


def _ending(job: Explained) -> str:
    if job.exit_code is not None and job.status in (Status.COMPLETED, Status.FAILED):
        words = f" (exit code {job.exit_code})"
    else:
        words = ""
    entries = history_entries(job.history[-1:])
    note = job.reason if job.status is Status.FAILED and job.reason else (entries[0].note if entries else "")
    if note:
        words += f", {note}"
    if entries and entries[0].cause is not None and entries[0].source is Source.USER:
        words += f", by {entries[0].cause}"
    return words


def _since(job: Explained, now: float) -> str:
    if not job.history:
        return ""
    when = float(job.history[-1][0])
    return f" since {time.strftime('%H:%M:%S', time.localtime(when))}, {_ago(now - when)}"


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _host(job: Explained) -> str:
    handle = job.handle  # (backend, fqid, host, pid, create_time, task_id, ...): base.Handle
    started = handle is not None and len(handle) > 5 and bool(handle[3] or handle[5])
    return str(handle[2]) if started and handle is not None and handle[2] else ""


def _code_and_note(code: str, note: str) -> str:
    return f"{code}: {note}" if note else code


def id_ranges(fqids: Sequence[str], limit: int = 8) -> str:
    """Subjob ids as ranges, ``3.4-3.43, 3.50``; cut after ``limit`` ranges ("and 12 more")."""
    runs: list[tuple[str, int, int]] = []
    for fqid in fqids:
        master, dot, sub = fqid.rpartition(".")
        if not dot:
            runs.append((fqid, -1, -1))
        elif sub.isdigit() and runs and runs[-1][0] == master and runs[-1][2] == int(sub) - 1:
            runs[-1] = (master, runs[-1][1], int(sub))
        elif sub.isdigit():
            runs.append((master, int(sub), int(sub)))
        else:
            runs.append((fqid, -1, -1))
    words = [prefix if first < 0 else
             f"{prefix}.{first}" if first == last else f"{prefix}.{first}-{prefix}.{last}"
             for prefix, first, last in runs[:limit]]
    if len(runs) > limit:
        words.append(f"and {sum(last - first + 1 for _, first, last in runs[limit:])} more")
    return ", ".join(words)
