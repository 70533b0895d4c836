"""Plain-text tables of jobs and subjobs (the GPI adds colour and HTML on top).

Reads no more than it shows: a master's row uses its per-status counts, never
its subjobs; a subjob table shows a window of rows plus the counts.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ..status import MASTER_PRIORITY, Status

COLUMNS = ("fqid", "status", "name", "subjobs", "application", "backend", "comment")
WIDTHS = (8, 11, 16, 28, 12, 10, 20)
SUBJOB_ROWS_SHOWN = 20


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def counts_summary(counts: dict[str, int]) -> str:
    """'running:3 failed:1 completed:6' in master-rule order."""
    if not counts:
        return ""
    order = [s.value for s in MASTER_PRIORITY] + [s.value for s in Status]
    seen: list[str] = []
    for key in order:
        if key in counts and key not in seen:
            seen.append(key)
    return " ".join(f"{k}:{counts[k]}" for k in seen)


def job_row(job: Any) -> tuple[str, ...]:
    backend = job.__dict__.get("backend") if job.master is None else None
    application = job.application
    return (
        job.fqid,
        job.status.value,
        job.name,
        counts_summary(job.subjob_counts),
        type(application).__name__ if application is not None else "",
        type(backend if backend is not None else job.backend).__name__,
        job.comment,
    )


def render(rows: Iterable[tuple[str, ...]], footer: str = "") -> str:
    header = " ".join(c.ljust(w) for c, w in zip(COLUMNS, WIDTHS, strict=True)).rstrip()
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(" ".join(_clip(v, w).ljust(w) for v, w in zip(row, WIDTHS, strict=True)).rstrip())
    if footer:
        lines.append(footer)
    return "\n".join(lines)


def job_summary(job: Any) -> str:
    if job.id is None and job.master is None:
        return f"<Job (not registered) {job.status.value} {type(job.application).__name__}>"
    text = render([job_row(job)])
    if job.reason and job.status.value in ("failed", "new", "unknown", "killed"):
        text += f"\nreason: {job.reason}"
    return text


def subjobs_table(job: Any, limit: int = SUBJOB_ROWS_SHOWN) -> str:
    if job._subjobs is None or len(job.subjobs) == 0:
        return "(no subjobs)"
    rows, footer = subjob_rows_for_display(job, limit)
    if len(job.subjobs) > limit:
        footer = "... " + footer + "  (j.subjobs.select(status=...) to filter)"
    return render(rows, footer)


# --- terminal colours and HTML (IPython and notebooks) ---------------------------------

COLOURS = {
    "new": "", "submitting": "\033[36m", "submitted": "\033[36m", "running": "\033[32m",
    "completing": "\033[32m", "completed": "\033[1;34m", "failed": "\033[1;31m",
    "killed": "\033[35m", "unknown": "\033[33m", "completed_frozen": "\033[34m",
    "failed_frozen": "\033[31m",
}
RESET = "\033[0m"


def _use_colour() -> bool:
    return sys.stdout.isatty()


def pretty_table(rows: Sequence[Sequence[str]], footer: str = "") -> str:
    colour = _use_colour()
    header = " ".join(c.ljust(w) for c, w in zip(COLUMNS, WIDTHS, strict=True)).rstrip()
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = [_clip(v, w).ljust(w) for v, w in zip(row, WIDTHS, strict=True)]
        code = COLOURS.get(row[1], "") if colour else ""
        if code:
            cells[1] = code + cells[1] + RESET
        # A running master with failures says so: its counts column is marked.
        if colour and "failed:" in row[3] and row[1] not in ("failed", "completed"):
            cells[3] = "\033[31m" + cells[3] + RESET
        lines.append(" ".join(cells).rstrip())
    if footer:
        lines.append(footer)
    return "\n".join(lines)


def html_table(rows: Sequence[Sequence[str]], footer: str = "") -> str:
    colours = {"completed": "#1f4e9c", "failed": "#c0392b", "running": "#1e8449",
               "killed": "#8e44ad", "submitted": "#117a8b", "submitting": "#117a8b"}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            style = f' style="color:{colours[value]}"' if index == 1 and value in colours else ""
            cells.append(f"<td{style}>{html.escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    foot = f"<caption>{html.escape(footer)}</caption>" if footer else ""
    return f"<table>{foot}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def subjob_rows_for_display(job: Any, limit: int = SUBJOB_ROWS_SHOWN) -> tuple[list[tuple[str, ...]], str]:
    tree = job._subjobs
    n = len(job.subjobs)
    rows = []
    if tree is not None:
        for i, sub in enumerate(tree.values()):
            if i >= limit:
                break
            rows.append(job_row(sub))
    footer = f"{n} subjobs: {counts_summary(job.subjob_counts)}"
    if n > limit:
        footer = f"showing {limit} of " + footer
    return rows, footer
