"""Tables of jobs and subjobs, and the one-line forms of a job (plain text; colour for
a terminal, HTML for a notebook).

Reads no more than it shows: a master's row uses its per-status counts, never its
subjobs; a subjob table shows a window of rows plus the counts, and says how to see
the rest. Columns fit what they hold: a number (an id, a count, an exit code, a run
time) is never cut; free text (names, comments, reasons, arguments) is cut at its
column's limit, with ``…``.
"""

from __future__ import annotations

import datetime
import html
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from BTrees.IOBTree import IOBTree

from ..status import ACTIVE, MASTER_PRIORITY, Status


class PrettyPrinter(Protocol):
    """What a ``_repr_pretty_`` uses of IPython's printer: its text, and the stack of
    the objects it is printing (more than one: this one is inside a container)."""

    stack: list[int]

    def text(self, obj: str) -> None: ...


class _Times(Protocol):
    @property
    def timestamps(self) -> Mapping[str, datetime.datetime]: ...


class Shown(Protocol):
    """What a table or a line reads of a job (``model.job.Job``; job.py imports this
    module, so it is named by a protocol)."""

    id: int | None
    fqid: str
    name: str
    comment: str
    reason: str
    exit_code: int | None
    backend_detail: str
    subjob_counts: dict[str, int]
    application: object | None
    backend: object | None
    time: _Times
    _overrides: Mapping[str, object]
    _subjobs: IOBTree | None

    @property
    def status(self) -> Status: ...

    @property
    def master(self) -> object | None: ...


class Column(NamedTuple):
    title: str
    limit: int | None = None  # free text is cut to this width; None: never cut
    keep_end: bool = False  # cut in the middle, so that the end (what differs) shows


JOB_COLUMNS = (Column("fqid"), Column("status"), Column("name", 24), Column("subjobs"),
               Column("runtime"), Column("application", 20), Column("backend", 20),
               Column("comment", 32))
SUBJOB_COLUMNS = (Column("fqid"), Column("status"), Column("exit"), Column("detail", 16),
                  Column("args", 40, keep_end=True), Column("reason", 60))
GAP = "  "
SUBJOB_ROWS_SHOWN = 20
FAILURE_STATUSES = ("failed", "new", "unknown", "killed")  # where a reason says why


def plural(n: int, word: str) -> str:
    """``1 job``, ``2 jobs``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def clip(text: str, width: int, keep_end: bool = False) -> str:
    """``text`` on one line, cut to ``width`` with ``…`` (in the middle: ``keep_end``)."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    if not keep_end:
        return text[: width - 1] + "…"
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[len(text) - tail:]


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


# --- what a row says -----------------------------------------------------------------------


def run_seconds(job: Shown, now: datetime.datetime | None = None) -> float | None:
    """How long the job ran, or runs: from ``j.time``'s backend_running to its
    backend_final (or final: a kill), or to now while it is active. None: it never ran."""
    stamps = job.time.timestamps
    start = stamps.get("backend_running")
    if start is None:
        return None
    if job.status in ACTIVE:
        end = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    else:
        ends = [stamps[k] for k in ("backend_final", "final") if k in stamps and stamps[k] >= start]
        if not ends:
            return None
        end = min(ends)
    return max(0.0, (end - start).total_seconds())


def duration(seconds: float | None) -> str:
    """As Slurm shows a time: ``0:07``, ``12:34``, ``1:02:03``, ``2-03:04:05``."""
    if seconds is None:
        return ""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def job_row(job: Shown, now: datetime.datetime | None = None) -> tuple[str, ...]:
    """A row of JOB_COLUMNS."""
    return (job.fqid, job.status.value, job.name, counts_summary(job.subjob_counts),
            duration(run_seconds(job, now)), _type_name(job.application),
            _type_name(job.backend), job.comment)


def _type_name(component: object | None) -> str:
    return "" if component is None else type(component).__name__


def split_values(sub: Shown) -> str:
    """What the splitter gave this subjob: its arguments (as a shell would write them),
    then any other value as ``name=value``."""
    overrides = dict(sub._overrides)
    args = overrides.pop("application.args", None)
    parts = [shlex.join(str(a) for a in args)] if isinstance(args, (list, tuple)) else []
    for path, value in overrides.items():
        root, _, name = path.partition(".")
        parts.append(f"{name if root == 'application' else path}={_plain(value)!r}")
    return " ".join(parts)


def _plain(value: object) -> object:
    """A stored value as it was given (a stored list or dict shows as a list or dict)."""
    if isinstance(value, Mapping):
        return dict(value)
    return list(value) if isinstance(value, tuple) else value


def subjob_row(sub: Shown) -> tuple[str, ...]:
    """A row of SUBJOB_COLUMNS."""
    return (sub.fqid, sub.status.value, "" if sub.exit_code is None else str(sub.exit_code),
            sub.backend_detail, split_values(sub), sub.reason)


def job_line(job: Shown) -> str:
    """A job on one line (``repr(j)``: in lists, logs, ``print([j1, j2])``):
    ``<Job 3 'sim': failed, 50 subjobs (failed:7 completed:43)>``."""
    if job.id is None and job.master is None:
        return f"<Job (not registered) {job.status.value} {type(job.application).__name__}>"
    status = job.status.value
    parts = [f"Job {job.fqid}" + (f" {job.name!r}" if job.name else "") + f": {status}"]
    counts = job.subjob_counts
    if counts:
        parts.append(f"{plural(sum(counts.values()), 'subjob')} ({counts_summary(counts)})")
    elif job.exit_code is not None and status != "completed":
        parts.append(f"exit {job.exit_code}")
    if job.reason and status in FAILURE_STATUSES:
        parts.append(clip(job.reason, 80))
    return "<" + ", ".join(parts) + ">"


def submitted_line(job: Shown, finished: bool = False) -> str:
    """What ``j.submit()`` shows: ``job 3 submitted: 50 subjobs`` (``finished``: a
    foreground backend's, which has waited: ``...; now completed``)."""
    n = sum(job.subjob_counts.values())
    line = f"job {job.fqid} submitted" + (f": {plural(n, 'subjob')}" if n else "")
    return line + (f"; now {job.status.value}" if finished else "")


# --- a table, plain or coloured ---------------------------------------------------------------

COLOURS = {
    "new": "", "submitting": "\033[36m", "submitted": "\033[36m", "running": "\033[32m",
    "completing": "\033[32m", "completed": "\033[1;34m", "failed": "\033[1;31m",
    "killed": "\033[35m", "unknown": "\033[33m", "completed_frozen": "\033[34m",
    "failed_frozen": "\033[31m",
}
RESET = "\033[0m"


def use_colour() -> bool:
    return sys.stdout.isatty()


def _cells(rows: Iterable[Sequence[str]], columns: Sequence[Column]) -> list[list[str]]:
    return [[clip(value, c.limit, c.keep_end) if c.limit else " ".join(str(value).split())
             for value, c in zip(row, columns, strict=True)] for row in rows]


def _colour(cells: list[str], row: Sequence[str], columns: Sequence[Column]) -> list[str]:
    titles = [c.title for c in columns]
    status = row[titles.index("status")]
    code = COLOURS.get(status, "")
    out = list(cells)
    if code:
        out[titles.index("status")] = code + out[titles.index("status")] + RESET
    # A running master with failures says so: its counts column is marked.
    if "subjobs" in titles:
        at = titles.index("subjobs")
        if "failed:" in row[at] and status not in ("failed", "completed"):
            out[at] = "\033[31m" + out[at] + RESET
    return out


def render(rows: Iterable[Sequence[str]], footer: str = "",
           columns: Sequence[Column] = JOB_COLUMNS, colour: bool = False) -> str:
    """The header, a rule, a line per row (every column as wide as its widest cell) and
    the footer's lines."""
    rows = list(rows)
    cells = _cells(rows, columns)
    widths = [max([len(c.title)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    header = GAP.join(c.title.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    lines = [header, "-" * len(header)]
    for row, line in zip(rows, cells, strict=True):
        padded = [v.ljust(w) for v, w in zip(line, widths, strict=True)]
        lines.append(GAP.join(_colour(padded, row, columns) if colour else padded).rstrip())
    if footer:
        lines.append(footer)
    return "\n".join(lines)


def pretty_table(rows: Sequence[Sequence[str]], footer: str = "",
                 columns: Sequence[Column] = JOB_COLUMNS) -> str:
    """``render``, coloured by status when the output is a terminal."""
    return render(rows, footer, columns, colour=use_colour())


def html_table(rows: Sequence[Sequence[str]], footer: str = "",
               columns: Sequence[Column] = JOB_COLUMNS) -> str:
    colours = {"completed": "#1f4e9c", "failed": "#c0392b", "running": "#1e8449",
               "killed": "#8e44ad", "submitted": "#117a8b", "submitting": "#117a8b"}
    head = "".join(f"<th>{html.escape(c.title)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column, value in zip(columns, row, strict=True):
            style = (f' style="color:{colours[value]}"'
                     if column.title == "status" and value in colours else "")
            cells.append(f"<td{style}>{html.escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    foot = ("<caption>" + "<br>".join(html.escape(line) for line in footer.splitlines())
            + "</caption>") if footer else ""
    return f"<table>{foot}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# --- the listings ------------------------------------------------------------------------------


def jobs_listing(jobs: Sequence[Shown], what: str = "jobs", colour: bool = False) -> str:
    """Jobs (or subjobs: ``what='subjobs'``) as one table, counted in its footer."""
    if what == "subjobs":
        return render([subjob_row(j) for j in jobs], plural(len(jobs), "subjob"),
                      SUBJOB_COLUMNS, colour)
    return render([job_row(j) for j in jobs], plural(len(jobs), what.rstrip("s")),
                  JOB_COLUMNS, colour)


def subjob_window(job: Shown, limit: int = SUBJOB_ROWS_SHOWN) -> tuple[list[tuple[str, ...]], str]:
    """The rows of a master's first ``limit`` subjobs, and a footer that counts them all
    and, when some are not shown, says how to see the rest (in Python)."""
    tree = job._subjobs
    rows = []
    if tree is not None:
        for i, sub in enumerate(tree.values()):
            if i >= limit:
                break
            rows.append(subjob_row(sub))
    n = sum(job.subjob_counts.values())
    counts = counts_summary(job.subjob_counts)
    if n <= limit:
        return rows, f"{plural(n, 'subjob')}: {counts}"
    me = f"jobs({job.id}).subjobs"
    return rows, (f"the first {limit} of {n} subjobs: {counts}\n"
                  f"the rest: {me}[{limit}:]; by status: {me}.select(status='failed')")


def subjobs_table(job: Shown, limit: int = SUBJOB_ROWS_SHOWN, colour: bool = False) -> str:
    """``j.subjobs`` as a table (its first ``limit`` rows)."""
    if job._subjobs is None or not job.subjob_counts:
        return "(no subjobs)"
    rows, footer = subjob_window(job, limit)
    return render(rows, footer, SUBJOB_COLUMNS, colour)
