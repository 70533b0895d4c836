"""The pieces of an open page that a live update sends again: ``{element id: its HTML}``.

Rendered by the pages' own functions, for the rows the page shows (at most a page of
them) plus the job's status, counts and history: never in proportion to all subjobs.
"""

from __future__ import annotations

from ..model.records import history_dicts, job_dict
from ..status import ACTIVE
from .html import badge, counts_bar, tbody
from .pages import history_rows, job_row, subjob_row
from .reads import HISTORY_SHOWN, Reader, job, jobs_tree, subjob_entry

MAX_ROWS = 200

Pieces = dict[str, str]


def jobs_pieces(conn: Reader, shown: list[str], newest_shown: int | None) -> Pieces:
    """The jobs list: each shown job's row, and a line when newer jobs exist."""
    tree = jobs_tree(conn)
    pieces: Pieces = {}
    for key in shown[:MAX_ROWS]:
        found = tree.get(int(key)) if key.isdigit() else None
        if found is not None:
            pieces[f"job-{found.fqid}"] = job_row(job_dict(found))
    if newest_shown is not None and len(conn.jobs):
        newer = len(list(tree.keys(newest_shown + 1)))  # only the jobs added since: few
        if newer:
            pieces["jobs-newer"] = (f'<p id="jobs-newer" class="notice done">{newer} newer '
                                    f'job{"s" * (newer != 1)}: <a href="/">show them</a></p>')
    return pieces


def job_pieces(conn: Reader, fqid: str, shown: list[str],
               serials: dict[str, bytes]) -> tuple[Pieces, bool]:
    """A job's page: its status, counts, history and the rows of the shown subjobs whose
    record changed since the stream last looked (``serials``: each one's last transaction,
    kept by the stream: a row costs a millisecond or so to build, a look at the serial
    nothing); and whether the job is a leaf still active (whose output the page follows)."""
    found = job(conn, fqid)
    pieces: Pieces = {f"status-{found.fqid}": badge(found.status.value, f"status-{found.fqid}")}
    counts = found.subjob_counts
    if counts:
        pieces[f"bar-{found.fqid}"] = counts_bar(counts, f"bar-{found.fqid}")
    tree = found._subjobs
    if tree is not None:
        for key in shown[:MAX_ROWS]:
            sub = tree.get(int(key)) if key.isdigit() else None
            if sub is None:
                continue
            sub._p_activate()  # (a ghost's serial is not its record's)
            if serials.get(key) != sub._p_serial:
                serials[key] = sub._p_serial
                pieces[f"sub-{sub.fqid}"] = subjob_row(subjob_entry(sub))
    history = history_dicts(found, HISTORY_SHOWN)
    pieces["history"] = tbody(history_rows(history), 5, "history", "no status change yet")
    return pieces, tree is None and found.status in ACTIVE


__all__ = ["MAX_ROWS", "Pieces", "job_pieces", "jobs_pieces"]
