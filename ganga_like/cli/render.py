"""What the commands print: jobs as text for a person and as JSON for a script.

The JSON forms are ``model.records``' (the web view's ``/api/...`` shows the same), so
every command that shows a job shows the same fields under the same names (``jobs``,
``show``, ``wait``, ``kill``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..model.records import (
    history_dicts,
    iso_time,
    job_dict,
    outcome_dict,
    show_dict,
    subjob_dict,
    subjobs_of,
)
from ..model.table import SUBJOB_COLUMNS, Column, clip, counts_summary, plural, subjob_row
from ..model.table import render as render_table
from ..status import ACTIVE, HistoryEntry, Status, history_entries

HISTORY_TIME = "%Y-%m-%d %H:%M:%S"


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


def history_line(entry: HistoryEntry) -> str:
    """``<time> running -> killed by kill #<id> (user) killed, confirmed``: the change, its
    cause (when the record has one: a master's ``derived from monitor batch #<id>``), its
    source and its note."""
    stamp = time.strftime(HISTORY_TIME, time.localtime(entry.when))
    cause = entry.cause
    by = "" if cause is None else f" {cause}" if cause.kind == "derived" else f" by {cause}"
    return f"{stamp} {entry.src} -> {entry.dst}{by} ({entry.source.value})" + \
        (f" {entry.note}" if entry.note else "")


def subjobs_section(job: Any, statuses: Sequence[str] | None, limit: int | None) -> list[str]:
    """A master's subjobs (with these statuses; the first ``limit``) as a table, headed by
    what it shows and, when it shows part of them, followed by how to see the rest."""
    shown, total = subjobs_of(job, statuses, limit)  # (reads only the rows shown)
    which = f" with status {','.join(statuses)}" if statuses else ""
    if not total:
        return [f"no subjobs{which}"]
    count = (f"all {total}" if len(shown) == total
             else f"the first {len(shown)} of {total}")
    lines = [f"subjobs{which} ({count}):",
             *render_table([subjob_row(s) for s in shown], "", SUBJOB_COLUMNS).splitlines()]
    if len(shown) < total:
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

    if job._subjobs is not None and job._subjobs:  # (len() of the tree would read every bucket)
        lines += ["", *subjobs_section(job, statuses, limit)]

    entries = history_entries(job.history)
    if entries:
        tail = entries[-history:]
        count = f"all {len(entries)}" if len(tail) == len(entries) else \
            f"the last {len(tail)} of {len(entries)}; --history N for more"
        lines += ["", f"history ({count}):", *[f"  {history_line(e)}" for e in tail]]
    return "\n".join(lines)


HOST_COLUMNS = (Column("host"), Column("status"), Column("protection"), Column("dirty"),
                Column("subjob"), Column("labels", 30), Column("last check"), Column("result", 60))


def hosts_text(rows: Sequence[dict[str, Any]]) -> str:
    """``ganga-like hosts``: a line per host (the dicts of the ``hosts`` verb)."""
    if not rows:
        return "no hosts: no Ray node is up"

    def checked(when: object) -> str:
        return time.strftime("%H:%M:%S", time.localtime(float(str(when)))) if when else "-"

    lines = [[str(r["name"]), str(r["status"]), str(r["protection"]), "yes" if r["dirty"] else "no",
              str(r["subjob"] or "-"), ",".join(map(str, r["labels"])) or "-", checked(r["last_check"]),
              str(r["last_result"] or "-")] for r in rows]
    return render_table(lines, footer=plural(len(rows), "host"), columns=HOST_COLUMNS)


__all__ = ["active_count", "history_dicts", "history_line", "iso_time", "job_dict", "outcome_dict",
           "hosts_text", "outcome_line", "show_dict", "show_text", "subjob_dict", "subjobs_section"]
