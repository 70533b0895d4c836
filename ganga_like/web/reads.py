"""What the web view's pages and ``/api/...`` read, through one connection each time.

Nothing here reads in proportion to all jobs or all subjobs to show a page of them:

- the jobs list walks the registry's ids newest first in widening windows (as
  ``registry.last``), loading only the jobs it shows; its total is the registry's
  ``Length``;
- a master's subjob table reads one page of its ``IOBTree`` by key range (subjob ids run
  from 0), its counts are the master's ``StatusCounts``;
- a filter by status reads the index of jobs, or of the master's subjobs, by status
  (``model.status_index``): only the ids of the page and the (sub)jobs it shows (a
  repository whose index is not built yet is read as below);
- a filter by name reads records until its page is full, until it has
  found as many as the counts say exist, or until it has read for ``SCAN_SECONDS``
  (records not in the connection's cache cost about 0.15 ms each: some 500 a page
  when cold, many thousands once read); then it says where it stopped, and the next
  page goes on from there (``after=`` / ``before=``). A status no subjob has is
  answered from the counts, reading none.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from BTrees.IOBTree import IOBTree

from ..errors import WebRefused
from ..model.index_fetch import fetch_filed
from ..model.job import Job
from ..model.records import detail_dict, job_dict, subjob_dict
from ..repository.registry import JobRegistry
from ..repository.root import RepositoryRoot
from .query import Listing

SCAN_SECONDS = 0.08  # the longest one request reads records to fill a filtered page
LOG_WINDOW = 1 << 20  # the end of the queue log searched for a job's lines
LOG_LINES = 50
HISTORY_SHOWN = 100


class Reader(Protocol):
    """What the reads use of a connection (``repository.storage.Connection``)."""

    @property
    def root(self) -> RepositoryRoot: ...

    @property
    def jobs(self) -> JobRegistry: ...


Row = dict[str, object]


def jobs_tree(conn: Reader) -> IOBTree:
    """The registry's tree of top-level jobs (id -> Job)."""
    tree = conn.root.jobs
    assert tree is not None  # every root has one (RepositoryRoot.__init__)
    return tree


@dataclasses.dataclass
class Page:
    """One page of a listing, and where the next one starts."""

    rows: list[Row]
    total: int | None  # how many match (None: not known without reading them all)
    read: int  # how many records this page read
    next_cursor: int | None = None  # the id the next page goes on after (or before)
    stopped_early: bool = False  # SCAN_SECONDS passed before the page was full

    def as_dict(self, cursor_name: str) -> dict[str, object]:
        return {"rows": self.rows, "total": self.total, "read": self.read,
                cursor_name: self.next_cursor, "stopped_early": self.stopped_early}


# --- the jobs list --------------------------------------------------------------------------


def newest_ids(conn: Reader, below: int | None) -> Iterator[int]:
    """Top-level job ids, newest first, below ``below``, reading the tree in windows."""
    tree = jobs_tree(conn)
    if not len(conn.jobs):
        return
    low_end = tree.minKey()
    top = tree.maxKey() if below is None else below - 1
    span = 64
    while top >= low_end:
        low = max(low_end, top - span + 1)
        yield from reversed(list(tree.keys(low, top)))
        top = low - 1
        span = min(span * 4, 65536)


def _job_matches(job: Job, q: Listing) -> bool:
    if q.statuses and job.status.value not in q.statuses:
        return False
    return q.name is None or fnmatch.fnmatchcase(job.name, q.name)


def _candidate_ids(conn: Reader, q: Listing) -> Iterator[int]:
    """Newest first: by the jobs index when a status is asked and it can answer (the
    matching ids only), else every id."""
    index = conn.jobs.index
    if q.statuses and index is not None and index.readable:
        yield from index.ids(q.statuses, maxid=None if q.before is None else q.before - 1,
                             limit=q.limit + 1 if q.name is None else None,  # +1: a next page?
                             newest_first=True)
    else:
        yield from newest_ids(conn, q.before)


def jobs_page(conn: Reader, q: Listing, budget: float = SCAN_SECONDS) -> Page:
    """The newest jobs (before ``q.before``) that match ``q``: ``jobs --json``'s rows. A
    filter reads for ``budget`` seconds at most (by status alone: only the jobs shown)."""
    tree = jobs_tree(conn)
    rows: list[Row] = []
    read = 0
    last_id: int | None = None
    clock = _Budget(budget)
    for job_id in _candidate_ids(conn, q):
        if len(rows) == q.limit or (q.filtered and clock.spent(read)):
            return Page(rows, _total(conn, q), read, last_id, stopped_early=len(rows) < q.limit)
        job = tree[job_id]
        read += 1
        last_id = job_id
        if _job_matches(job, q):
            rows.append(job_dict(job))
    return Page(rows, _total(conn, q), read)


def _total(conn: Reader, q: Listing) -> int | None:
    index = conn.jobs.index
    if q.statuses and q.name is None and index is not None and index.readable:
        return index.count(q.statuses)
    return None if q.filtered else len(conn.jobs)


# --- one job ---------------------------------------------------------------------------------


def job(conn: Reader, fqid: str) -> Job:
    """The job or subjob ``fqid`` names (``3``, ``3.14``), or one line (404)."""
    head, dot, tail = fqid.partition(".")
    if not head.isdigit() or (dot and not tail.isdigit()) or len(fqid) > 30:
        raise WebRefused(404, f"{fqid[:40]!r} is not a job id", "give 3, or 3.14 for a subjob")
    try:
        return conn.jobs.get(fqid)
    except Exception as exc:  # JobNotFound: its own line names the ids there are
        raise WebRefused(404, str(exc).split(" (")[0], _known(conn, exc)) from None


def _known(conn: Reader, exc: Exception) -> str:
    known = str(exc).partition(" (")[2].rstrip(")")
    return known or f"{len(conn.jobs)} jobs in this repository"


def detail(found: Job) -> Row:
    """What a job's page shows: ``show --json`` of the job without its subjob list (paged:
    ``subjobs_page``) and its description (the configuration has a page of its own:
    a splitter may hold a list per subjob); the history's last HISTORY_SHOWN entries."""
    data = detail_dict(found, with_description=False, history_last=HISTORY_SHOWN)
    data["history_count"] = len(found.history)
    return data


def subjobs_page(master: Job, q: Listing, budget: float = SCAN_SECONDS) -> Page:
    """A page of ``master``'s subjobs: ``show --json``'s ``subjob_list`` rows, with ids. A
    filter reads for ``budget`` seconds at most."""
    tree = master._subjobs
    counts = master.subjob_counts
    n = sum(counts.values())
    if tree is None:
        raise WebRefused(404, f"job {master.fqid} has no subjobs", "a master's page lists its subjobs")
    if q.statuses:
        wanted = sum(counts.get(s, 0) for s in q.statuses)
        if not wanted:  # from the counts: nothing to read
            return Page([], 0, 0)
        index = master._subjob_index
        if index is not None and index.readable:
            return _indexed_subjobs(master, q, wanted)
        return _filtered_subjobs(tree, q, wanted, budget)
    if q.after is not None:
        subs = tree.values(q.after + 1)
    else:
        first = ((q.page or 1) - 1) * q.limit
        if q.page is not None and q.page > 1 and first >= n:
            last = max(1, -(-n // q.limit))
            raise WebRefused(400, f"page={q.page} is past the last page",
                             f"job {master.fqid}'s {n} subjobs fill pages 1 to {last}")
        subs = tree.values(first, first + q.limit - 1)
    rows = [subjob_entry(sub) for sub in _first(subs, q.limit)]
    more = rows and int(str(rows[-1]["id"])) < tree.maxKey()
    return Page(rows, n, len(rows), int(str(rows[-1]["id"])) if more else None)


def _indexed_subjobs(master: Job, q: Listing, wanted: int) -> Page:
    """A filtered page from the master's index: the ids of one page more than it shows
    (to know if there is a next), then only the subjobs shown."""
    index, tree = master._subjob_index, master._subjobs
    assert index is not None and tree is not None
    ids = index.ids(q.statuses, None if q.after is None else q.after + 1, limit=q.limit + 1)
    shown = ids[:q.limit]
    rows = [subjob_entry(sub) for sub in fetch_filed(index, tree, shown, master)
            if sub is not None]
    return Page(rows, wanted, len(rows), shown[-1] if len(ids) > len(shown) else None)


def _filtered_subjobs(tree: IOBTree, q: Listing, wanted: int, budget: float) -> Page:
    values = tree.values(None if q.after is None else q.after + 1)
    rows: list[Row] = []
    read = 0
    last_id: int | None = None
    clock = _Budget(budget)
    stopped = False
    for sub in values:
        stopped = clock.spent(read)
        if len(rows) == q.limit or stopped or (q.after is None and len(rows) == wanted):
            break
        read += 1
        last_id = sub.id
        if sub.status.value in q.statuses:
            rows.append(subjob_entry(sub))
    else:
        last_id = None  # read to the end
    done = q.after is None and len(rows) == wanted
    return Page(rows, wanted, read, None if done else last_id,
                stopped_early=stopped and len(rows) < q.limit)


class _Budget:
    """How long a filtered page may read (looked at every 64 records: the clock costs too)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def spent(self, read: int) -> bool:
        return read % 64 == 0 and read > 0 and time.monotonic() > self.end


def _first(values: Iterable[Job], limit: int) -> Iterator[Job]:
    for count, sub in enumerate(values):
        if count >= limit:
            return
        yield sub


def subjob_entry(sub: Job) -> Row:
    row = subjob_dict(sub)
    row["id"] = sub.id
    return row


# --- the queue log ----------------------------------------------------------------------------


def queue_log_lines(path: str, fqid: str, limit: int = LOG_LINES) -> list[str]:
    """The last ``limit`` lines of the queue log about ``fqid`` or its subjobs, among the
    log's last LOG_WINDOW bytes (the log is the repository's, one line per change)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - LOG_WINDOW))
            data = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    lines = data.splitlines()[1:] if size > LOG_WINDOW else data.splitlines()
    mine = [line for line in lines if _about(line, fqid)]
    return mine[-limit:]


def _about(line: str, fqid: str) -> bool:
    parts = line.split(" ", 4)
    return len(parts) > 3 and (parts[3] == fqid or parts[3].startswith(fqid + "."))


__all__ = ["HISTORY_SHOWN", "SCAN_SECONDS", "Page", "Reader", "detail", "job", "jobs_page", "jobs_tree",
           "queue_log_lines", "subjob_entry", "subjobs_page"]
