"""A session's view of the repository: its connection, registries, reads and writes.

Two kinds of session build on it. :class:`ganga_like.engine.core.Session` is the
core of the service: it also owns the backend actors and the monitor.
:class:`ganga_like.client.session.ClientSession` is what every face uses: it
reads and edits jobs through its own ZEO connection and asks the service for
every verb that touches running work. Both read and write the database the same
way, so that part lives here once.
"""

from __future__ import annotations

import time
from typing import Any

from ZODB.POSException import ConflictError

from .backends.local.config import Local
from .config import Config
from .errors import ReadOnlySession
from .model import binding, new_objects
from .model.job import Job
from .model.session import Lock, Verb
from .model.writes import Change
from .queue_log import QueueLog
from .repository.storage import Repository
from .repository.transactions import DEFAULT_ATTEMPTS
from .status import Status

# Tries to take a new job's id while other clients take theirs (a conflict costs a retry
# of a few ms): eight scripts making jobs at once ran out of the default 8.
ID_ATTEMPTS = 40

READ_REFRESH_INTERVAL = 0.05


class StoreSession:
    def __init__(self, config: Config, repository: Repository) -> None:
        self.config = config
        self.repository = repository
        self.main = repository.connect()
        binding.bind(repository.db, self)
        self.queue_log = QueueLog(config.queue_log)
        self._closed = False
        self._last_refresh = 0.0

    @property
    def read_only(self) -> bool:
        return self.repository.read_only

    @property
    def jobs(self) -> Any:
        return self.main.jobs

    @property
    def templates(self) -> Any:
        return self.main.templates

    @property
    def repo_uuid(self) -> str:
        return self.main.root.repo_uuid

    @property
    def closed(self) -> bool:
        return self._closed

    def on_commit(self, changes: list[Change]) -> None:
        self.queue_log.append(changes)

    def write(self, work: Any, note: str = "", attempts: int = DEFAULT_ATTEMPTS) -> Any:
        self.check_writable()
        return self.main.write(work, on_commit=self.on_commit, note=note, attempts=attempts)

    def refresh(self) -> None:
        self.main.refresh()
        self._last_refresh = time.monotonic()

    def refresh_for_read(self, jar: Any) -> None:
        """Let reads through the user's connection see other writers' commits.

        A Ganga script polls ``while j.status != 'completed': sleep(1)``; the job
        object belongs to this session's connection, which sees other commits only
        at a transaction boundary. Reads start a new one, at most every
        ``READ_REFRESH_INTERVAL`` seconds, so a loop over many jobs stays cheap."""
        if jar is self.main.conn and time.monotonic() - self._last_refresh > READ_REFRESH_INTERVAL:
            self.refresh()

    def check_writable(self, what: str = "a change") -> None:
        """Refuse, in one line, ``what`` a read-only session was asked to change."""
        if self.read_only:
            raise ReadOnlySession(what)

    def check_verb(self, verb: Verb) -> None:
        """Before a verb: one that changes jobs (``Lock.WRITE``) is refused read-only."""
        if verb.lock is Lock.WRITE:
            self.check_writable(f"{verb.name}()")

    def mode_of(self, job: Job) -> str:
        top = job.master or job
        return top.mode or self.config.mode

    def register(self, job: Job) -> Job:
        """Store a new job (or template) under a fresh id."""
        if job.id is not None and job._p_jar is not None:
            return job
        self.check_writable(f"storing a new {type(job).__name__}")
        if job.master is None and job.backend is None:
            job.backend = Local()  # Ganga's default backend
        registry = self.templates if job.status is Status.TEMPLATE else self.jobs
        # A retried attempt would store the job as a conflict at the vote left it: empty.
        snapshot = new_objects.Snapshot(job)
        taken: list[int] = []  # its id, once taken in a write of its own

        def work() -> None:
            snapshot.restore()
            registry.add(job, taken[0] if taken else None)

        what = type(job).__name__
        try:
            self.write(work, note=f"register {what}", attempts=1)
            return job
        except ConflictError:
            pass
        # Others make jobs at this moment. The id allocator is the one object every new
        # job's write changes, and a write that also stores the job and its parts is long
        # enough for eight scripts making jobs at once to keep colliding on it until the
        # attempts ran out: the id is taken in a short write of its own, tried more often,
        # and then the job is stored under it. (A registration that fails after this
        # leaves a gap in the ids.)
        taken.append(self.write(registry.take_id, note=f"take an id for a new {what}",
                                attempts=ID_ATTEMPTS))
        self.write(work, note=f"register {what}")
        return job

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.main.close()
        finally:
            binding.unbind(self.repository.db)
            self.repository.close()

    def __enter__(self) -> StoreSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
