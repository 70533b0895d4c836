"""A job as plain values: the JSON shapes every face shows.

Built here once, so the command line's ``--json`` (``jobs``, ``show``, ``wait``,
``kill``, ...) and the web view's ``/api/...`` show the same fields under the same
names. Reads no more than the shape holds: ``job_dict`` reads a master's counts,
never its subjobs; only ``show_dict`` (``show --json``) lists every subjob.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import islice
from typing import Any

from ..status import history_entries
from .description import description
from .index_fetch import fetch_filed
from .table import run_seconds


def iso_time(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")


def job_dict(job: Any) -> dict[str, Any]:
    """A row of ``jobs --json``; every other command's job object starts with it."""
    return {"fqid": job.fqid, "status": job.status.value, "name": job.name,
            "subjobs": job.subjob_counts, "application": type(job.application).__name__,
            "backend": type(job.backend).__name__, "comment": job.comment,
            "reason": job.reason, "exit_code": job.exit_code, "created": iso_time(job.created),
            "runtime_s": _rounded(run_seconds(job))}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def outcome_dict(job: Any) -> dict[str, Any]:
    """What ``wait``/``kill``/``resubmit`` report of a job: where it is now."""
    return {"fqid": job.fqid, "status": job.status.value, "subjobs": job.subjob_counts,
            "exit_code": job.exit_code, "reason": job.reason}


def history_dicts(job: Any, last: int | None = None) -> list[dict[str, Any]]:
    """The history's entries (``last``: only the last so many: a master's may be long)."""
    stored = job.history if last is None else job.history[-last:]
    return [{"time": iso_time(e.when), "from": e.src, "to": e.dst, "note": e.note,
             "source": e.source.value, "cause": None if e.cause is None else str(e.cause)}
            for e in history_entries(stored)]


def subjobs_of(job: Any, statuses: Sequence[str] | None,
               limit: int | None = None) -> tuple[list[Any], int]:
    """The first ``limit`` subjobs of ``job`` (with ``statuses``) and how many there are,
    reading only those returned: the count is the master's counts', a status's subjobs
    come from its index of subjobs by status (``status_index``), when it is built."""
    tree = job._subjobs
    if tree is None:
        return [], 0
    counts = job._counts.counts if job._counts is not None else {}
    index = job._subjob_index
    if not statuses:
        return list(islice(tree.values(), limit)), sum(counts.values())
    if index is not None and index.readable:
        found = fetch_filed(index, tree, index.ids(statuses, limit=limit), job)
        return [s for s in found if s is not None], sum(counts.get(s, 0) for s in set(statuses))
    subs = [s for s in tree.values() if s.status.value in statuses]
    return subs[:limit], len(subs)


def subjob_dict(sub: Any) -> dict[str, Any]:
    return {"fqid": sub.fqid, "status": sub.status.value, "exit_code": sub.exit_code,
            "backend_detail": sub.backend_detail, "backend_note": sub.backend_note,
            "reason": sub.reason,
            "args": list(getattr(sub.application, "args", ()) or ())}


def detail_dict(job: Any, with_description: bool = True,
                history_last: int | None = None) -> dict[str, Any]:
    """``show --json`` without its list of subjobs (the web view pages through those).
    ``with_description=False``: without the description either, whose splitter may hold
    an argument list per subjob (a page shows it on a page of its own); ``history_last``:
    only the history's last so many entries."""
    data = job_dict(job)
    data.update({"master": job.master.fqid if job.master is not None else None,
                 "backend_detail": job.backend_detail, "backend_note": job.backend_note,
                 "workdir": job.workdir})
    if with_description:
        data["description"] = description(job)
    data["history"] = history_dicts(job, history_last)
    return data


def show_dict(job: Any, statuses: Sequence[str] | None) -> dict[str, Any]:
    data = detail_dict(job)
    if job._subjobs is not None:
        data["subjob_list"] = [subjob_dict(s) for s in subjobs_of(job, statuses)[0]]
    return data
