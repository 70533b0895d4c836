"""Plain-text tables of jobs and subjobs (the GPI adds colour and HTML on top).

Reads no more than it shows: a master's row uses its per-status counts, never
its subjobs; a subjob table shows a window of rows plus the counts.
"""

from __future__ import annotations

from typing import Any, Iterable

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
    header = " ".join(c.ljust(w) for c, w in zip(COLUMNS, WIDTHS)).rstrip()
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(" ".join(_clip(v, w).ljust(w) for v, w in zip(row, WIDTHS)).rstrip())
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
    tree = job._subjobs
    n = len(job.subjobs)
    if tree is None or n == 0:
        return "(no subjobs)"
    rows = []
    for i, sub in enumerate(tree.values()):
        if i >= limit:
            break
        rows.append(job_row(sub))
    footer = f"{n} subjobs: {counts_summary(job.subjob_counts)}"
    if n > limit:
        footer = f"... showing {limit} of " + footer + "  (j.subjobs.select(status=...) to filter)"
    return render(rows, footer)
