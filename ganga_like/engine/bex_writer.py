"""The service's writer of the BEX queue (``ganga_like.bex``): files follow the database.

After each commit that changed a (sub)job (a status change, or a backend detail the
monitor recorded), the committing thread hands its fqids to :meth:`BexWriter.notice`
(cheap: a set insert, and nothing at all for a job already known not to be a Hosts
job). The writer's own thread, on a connection of its own, reads those jobs as
committed and rewrites their files (``bex.files``), never inside a transaction. A
commit that ended attempts waits for it (:meth:`flush`, briefly): the writer reads a
job as it is now, and an attempt resubmitted before its end was written (the monitor
auto-resubmits right after) would lose its end and its transcript. A job's files are
a function of its stored state, so a crash between a commit and its files is repaired
at the next start by rewriting every job that was active since the last recovery
(:meth:`repair`). While a BEX job's run is in ``PREP`` the thread looks at its status
file every :data:`PREP_POLL` s, since the end of a Prep command is no commit. A removed
job's entries leave their hosts' queues (those this writer placed: a service killed
between a removal and that leaves them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from ..bex import codes
from ..bex.entry import entry_of, is_queued_job
from ..bex.files import QueueDir
from ..bex.submit import job_text_of
from ..errors import GangaLikeError
from ..model.job import Job
from ..repository.registry import JobRegistry
from ..repository.storage import Connection, Repository

log = logging.getLogger(__name__)

PREP_POLL = 0.5  # seconds between looks at the status files of runs in PREP
IDLE = 5.0


class BexWriter:
    def __init__(self, repository: Repository, queue: QueueDir) -> None:
        self.repository = repository
        self.queue = queue
        self._pending: set[str] = set()
        self._prep: set[str] = set()  # fqids last written as PREP
        self._queued_tops: dict[str, bool] = {}  # top-level id -> whether it is a Hosts job
        self._placed: dict[str, tuple[str, tuple[str, ...]]] = {}  # fqid -> (job-id, hosts)
        self._cond = threading.Condition()
        self._busy = False
        self._writing: set[str] = set()  # the fqids of the look under way
        self._stop = False
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ganga_like-bex", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def notice(self, fqids: Iterable[str]) -> None:
        """(Any thread, after a commit.) These (sub)jobs' stored state may have changed."""
        with self._cond:
            known = self._queued_tops
            fresh = {f for f in fqids if known.get(f.partition(".")[0], True)}
            if fresh:
                self._pending |= fresh
                self._cond.notify_all()

    def repair(self, top_ids: Iterable[int]) -> None:
        """Rewrite the files of these jobs (and their subjobs) from their stored state."""
        self.notice(str(i) for i in top_ids)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was noticed so far is written; whether it was in time."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy or self._stop,
                                       timeout)

    def settle(self, fqids: Iterable[str], timeout: float) -> bool:
        """Wait until these (sub)jobs are written (at once for those it does not queue: a
        Local job's end never waits for a Hosts job being written)."""
        wanted = set(fqids)
        with self._cond:
            return self._cond.wait_for(
                lambda: not wanted & (self._pending | self._writing) or self._stop, timeout)

    # -- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        conn = self.repository.connect()
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._pending or self._stop,
                                        PREP_POLL if self._prep else IDLE)
                    if self._stop:
                        return
                    batch = self._pending | self._prep
                    self._pending = set()
                    self._busy, self._writing = True, batch
                try:
                    self._write(conn, batch)
                except Exception as exc:  # the writer must not die: files are rewritten later
                    log.exception("writing the BEX queue failed")
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                finally:
                    conn.conn.transaction_manager.abort()  # a reader: nothing of it is kept
                    with self._cond:
                        self._busy, self._writing = False, set()
                        self._cond.notify_all()
        finally:
            conn.close()

    def _write(self, conn: Connection, fqids: set[str]) -> None:
        conn.refresh()  # see the commits that were noticed
        jobs = conn.jobs
        for fqid in sorted(fqids, key=_order):
            if self._queued_tops.get(fqid.partition(".")[0]) is False:
                continue  # a job known not to be queued: not even read
            job = _lookup(jobs, fqid)
            if job is None:  # removed: its entries leave their hosts' queues
                self._drop(fqid)
                continue
            if not self._queued(job):
                self._prep.discard(fqid)
                continue
            leaves = list(job._subjobs.values()) if job._subjobs is not None else [job]
            for leaf in leaves:
                self._write_leaf(leaf)

    def _queued(self, job: Job) -> bool:
        top = job.master or job
        key = str(top.id)
        known = self._queued_tops.get(key)
        if known is None:
            known = self._queued_tops[key] = is_queued_job(top)
        return known

    def _write_leaf(self, leaf: Job) -> None:
        entry = entry_of(leaf)
        code = self.queue.write(entry, job_text_of(leaf))
        if entry.hosts:
            self._placed[entry.fqid] = (entry.name, entry.hosts)
        if code == codes.PREP:
            self._prep.add(leaf.fqid)
        else:
            self._prep.discard(leaf.fqid)


    def _drop(self, fqid: str) -> None:
        """A removed job's entries (those this writer placed) leave their hosts' queues."""
        top = fqid.partition(".")[0]
        for leaf in [f for f in self._placed if f == fqid or f.partition(".")[0] == top]:
            name, hosts = self._placed.pop(leaf)
            self._prep.discard(leaf)
            for host in hosts:
                self.queue.drop(name, host)


def _order(fqid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in fqid.split("."))


def _lookup(jobs: JobRegistry, fqid: str) -> Job | None:
    try:
        return jobs.get(fqid)
    except GangaLikeError:
        return None
