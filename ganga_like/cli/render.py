"""What the commands print: jobs as text for a person and as JSON for a script.

The JSON forms are built here once, so every command that shows a job shows the
same fields under the same names (``jobs``, ``show``, ``wait``, ``kill``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..model.table import SUBJOB_COLUMNS, clip, counts_summary, run_seconds, subjob_row
from ..model.table import render as render_table
from ..status import ACTIVE, HistoryEntry, Status, history_entries

HISTORY_TIME = "%Y-%m-%d %H:%M:%S"


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


def active_count(job: Any) -> int:
    """How many of the job's leaves (itself, or its subjobs) are active."""
    counts = job.subjob_counts or {job.status.value: 1}
    return sum(n for status, n in counts.items() if Status.parse(status) in ACTIVE)


def outcome_line(job: Any) -> str:
    """``3: failed (subjobs completed:98 failed:2)`` / ``4: failed (exit 3)``."""
    status = job.status.value
    if job.subjob_counts:
        return f"{job.fqid}: {status} (subjobs {counts_summary(job.subjob_counts)})"
    if status == "failed" and job.exit_code is not None:
        return f"{job.fqid}: {status} (exit {job.exit_code})"
    return f"{job.fqid}: {status}"


def history_dicts(job: Any) -> list[dict[str, Any]]:
    return [{"time": iso_time(e.when), "from": e.src, "to": e.dst, "note": e.note,
             "source": e.source.value, "cause": None if e.cause is None else str(e.cause)}
            for e in history_entries(job.history)]


def history_line(entry: HistoryEntry) -> str:
    """``<time> running -> killed by kill #<id> (user) killed, confirmed``: the change, its
    cause (when the record has one: a master's ``derived from monitor batch #<id>``), its
    source and its note."""
    stamp = time.strftime(HISTORY_TIME, time.localtime(entry.when))
    cause = entry.cause
    by = "" if cause is None else f" {cause}" if cause.kind == "derived" else f" by {cause}"
    return f"{stamp} {entry.src} -> {entry.dst}{by} ({entry.source.value})" + \
        (f" {entry.note}" if entry.note else "")


def subjobs_of(job: Any, statuses: Sequence[str] | None) -> list[Any]:
    tree = job._subjobs
    if tree is None:
        return []
    subs = list(tree.values())
    if statuses:
        subs = [s for s in subs if s.status.value in statuses]
    return subs


def subjob_dict(sub: Any) -> dict[str, Any]:
    return {"fqid": sub.fqid, "status": sub.status.value, "exit_code": sub.exit_code,
            "backend_detail": sub.backend_detail, "backend_note": sub.backend_note,
            "reason": sub.reason,
            "args": list(getattr(sub.application, "args", ()) or ())}


def show_dict(job: Any, statuses: Sequence[str] | None) -> dict[str, Any]:
    from ..client.export import description

    data = job_dict(job)
    data.update({"master": job.master.fqid if job.master is not None else None,
                 "backend_detail": job.backend_detail, "backend_note": job.backend_note,
                 "workdir": job.workdir,
                 "description": description(job), "history": history_dicts(job)})
    if job._subjobs is not None:
        data["subjob_list"] = [subjob_dict(s) for s in subjobs_of(job, statuses)]
    return data


def subjobs_section(job: Any, statuses: Sequence[str] | None, limit: int | None) -> list[str]:
    """A master's subjobs (with these statuses; the first ``limit``) as a table, headed by
    what it shows and, when it shows part of them, followed by how to see the rest."""
    subs = subjobs_of(job, statuses)
    shown = subs if limit is None else subs[:limit]
    which = f" with status {','.join(statuses)}" if statuses else ""
    if not subs:
        return [f"no subjobs{which}"]
    count = (f"all {len(subs)}" if len(shown) == len(subs)
             else f"the first {len(shown)} of {len(subs)}")
    lines = [f"subjobs{which} ({count}):",
             *render_table([subjob_row(s) for s in shown], "", SUBJOB_COLUMNS).splitlines()]
    if len(shown) < len(subs):
        status = f" --status {','.join(statuses)}" if statuses else ""
        lines.append(f"the rest: ganga-like show {job.fqid}{status} --all (or --limit N)"
                     + ("" if statuses else f"; by status: ganga-like show {job.fqid} --status failed"))
    return lines


def show_text(job: Any, statuses: Sequence[str] | None, limit: int | None,
              history: int) -> str:
    """``ganga-like show``: one heading, the job's fields, its subjobs, its history."""
    kind = "subjob" if job.master is not None else "job"
    title = f"{kind} {job.fqid}" + (f" {job.name!r}" if job.name else "")
    lines = [f"{title}: {job.status.value}"]
    fields: list[tuple[str, Any]] = [
        ("application", repr(job.application)),
        ("backend", repr(job.backend)),
    ]
    if job.master is None and job.splitter is not None:
        fields.append(("splitter", clip(repr(job.splitter), 120)))
    if job.subjob_counts:
        fields.append(("subjobs", f"{sum(job.subjob_counts.values())}: "
                                  f"{counts_summary(job.subjob_counts)}"))
    if job.exit_code is not None:
        fields.append(("exit code", job.exit_code))
    if job.backend_detail:
        note = f" ({job.backend_note})" if job.backend_note else ""
        fields.append(("detail", job.backend_detail + note))
    if job.reason:
        fields.append(("reason", job.reason))
    if job.comment:
        fields.append(("comment", job.comment))
    fields.append(("workdir", job.workdir))
    lines += [f"  {name.ljust(13)}{value}" for name, value in fields]

    if job._subjobs is not None and len(job._subjobs):
        lines += ["", *subjobs_section(job, statuses, limit)]

    entries = history_entries(job.history)
    if entries:
        tail = entries[-history:]
        count = f"all {len(entries)}" if len(tail) == len(entries) else \
            f"the last {len(tail)} of {len(entries)}; --history N for more"
        lines += ["", f"history ({count}):", *[f"  {history_line(e)}" for e in tail]]
    return "\n".join(lines)
