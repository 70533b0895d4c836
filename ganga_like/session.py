"""A Session: the repository, the backend actors and the monitor, for one process.

The GPI uses one default session, started on first use; tests and tools may open
their own (``Session(Config(...))``). Sessions write the database; actors never
do. Ganga's verbs live in ``ganga_like/operations/``, one module per family;
the methods here delegate to them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from .config import Config
from .errors import OperationRefused
from .model import binding
from .model.job import Job
from .model.lifecycle import Change
from .monitor import Monitor
from .operations import forcing, output
from .operations import kill as kill_op
from .operations import remove as remove_op
from .operations import resubmit as resubmit_op
from .operations import submit as submit_op
from .operations import unmonitor as unmonitor_op
from .operations.common import active_set as _active_set  # noqa: F401  (tests, recovery)
from .operations.submit import split as _split  # noqa: F401  (tests)
from .queue_log import QueueLog
from .repository import open_repository
from .status import ACTIVE, Status

READ_REFRESH_INTERVAL = 0.05


class Session:
    def __init__(self, config: Config | None = None, read_only: bool | None = None,
                 fallback_read_only: bool = False) -> None:
        self.config = config or Config.from_env()
        self.repository = open_repository(self.config, read_only=read_only,
                                          fallback_read_only=fallback_read_only)
        self.main = self.repository.connect()
        binding.bind(self.repository.db, self)
        self.queue_log = QueueLog(self.config.queue_log)
        self._backends = None
        self.monitor = Monitor(self)
        self._changed = threading.Condition()
        self._recovered = False
        self._closed = False
        self._last_refresh = 0.0

    # -- plumbing -------------------------------------------------------------------
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
    def backends(self) -> Any:
        if self._backends is None:
            from .backend_pool import BackendPool

            self._backends = BackendPool(self.repo_uuid)
        return self._backends

    def on_commit(self, changes: list[Change]) -> None:
        self.queue_log.append(changes)

    def notify_changed(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def write(self, work: Any, note: str = "") -> Any:
        self.check_writable()
        return self.main.write(work, on_commit=self.on_commit, note=note)

    def refresh(self) -> None:
        self.main.refresh()
        self._last_refresh = time.monotonic()

    def refresh_for_read(self, jar: Any) -> None:
        """Let reads through the user's connection see the monitor's commits.

        A Ganga script polls ``while j.status != 'completed': sleep(1)``; the job
        object belongs to this session's connection, which sees other commits only
        at a transaction boundary. Reads start a new one, at most every
        ``READ_REFRESH_INTERVAL`` seconds, so a loop over many jobs stays cheap."""
        if jar is self.main.conn and time.monotonic() - self._last_refresh > READ_REFRESH_INTERVAL:
            self.refresh()

    def check_writable(self) -> None:
        if self.read_only:
            raise OperationRefused("-", "change the repository", "read-only",
                                   "this session opened it read-only (another session holds it)")

    def ensure_monitor(self) -> None:
        if not self.monitor.running:
            self.monitor.start()
            from .ray_runtime import before_ray_shutdown

            before_ray_shutdown(self.close)  # the whole session, while Ray still runs
        if not self._recovered:
            self._recovered = True
            self.recover()

    def mode_of(self, job: Job) -> str:
        top = job.master or job
        return top.mode or self.config.mode

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.monitor.stop()
        if self._backends is not None:
            self._backends.shutdown()
        try:
            self.main.close()
        finally:
            binding.unbind(self.repository.db)
            self.repository.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- creating -------------------------------------------------------------------
    def register(self, job: Job) -> Job:
        """Store a new job (or template) under a fresh id."""
        if job.id is not None and job._p_jar is not None:
            return job
        registry = self.templates if job.status is Status.TEMPLATE else self.jobs

        def work() -> None:
            registry.add(job)

        self.write(work, note=f"register {type(job).__name__}")
        return job

    # -- Ganga's verbs (ganga_like/operations/) ------------------------------------------
    def submit(self, job: Job, keep_going: bool = False) -> Job:
        return submit_op.submit(self, job, keep_going=keep_going)

    def kill(self, job: Job) -> None:
        kill_op.kill(self, job)

    def resubmit(self, job: Job, force: bool = False, include_killed: bool = False) -> None:
        resubmit_op.resubmit(self, job, force=force, include_killed=include_killed)

    def auto_resubmit(self, conn: Any, fqids: list[str]) -> None:
        resubmit_op.auto_resubmit(self, conn, fqids)

    def remove(self, job: Job, force: bool = False) -> None:
        remove_op.remove(self, job, force=force)

    def force_status(self, job: Job, status: str, force: bool = False) -> None:
        forcing.force_status(self, job, status, force=force)

    def freeze(self, job: Job) -> None:
        forcing.freeze(self, job)

    def unfreeze(self, job: Job) -> None:
        forcing.unfreeze(self, job)

    def unmonitor(self, job: Job) -> None:
        unmonitor_op.unmonitor(self, job)

    def peek(self, job: Job, file: str = "stdout", lines: int = 20) -> str:
        return output.peek(self, job, file=file, lines=lines)

    def log_tail(self, job: Job, nbytes: int = 300) -> str:
        return output.log_tail(self, job, nbytes=nbytes)


    def postprocess(self, job: Job) -> tuple[bool, str]:
        """Collect outputs and run the master's postprocessors for one finished (sub)job."""
        from .postprocessing import run_for_subjob

        return run_for_subjob(job)

    def wait(self, jobs: Iterable[Job], timeout: float | None = None,
             poll: float = 0.5) -> list[Status]:
        """Block until every job is final (or new again); return their statuses."""
        jobs = list(jobs)
        if any(j.status in ACTIVE for j in jobs):
            self.ensure_monitor()
        deadline = None if timeout is None else time.monotonic() + timeout
        tops = {(j.master or j).id for j in jobs}
        while True:
            self.refresh()
            statuses = [j.status for j in jobs]
            # Final, and the master-level postprocessors (mergers) have run too.
            if all(s not in ACTIVE for s in statuses) and not self.monitor.postprocessing(tops):
                return statuses
            if deadline is not None and time.monotonic() >= deadline:
                from .errors import WaitTimeout

                raise WaitTimeout(timeout, [j.fqid for j, s in zip(jobs, statuses) if s in ACTIVE])
            with self._changed:
                self._changed.wait(poll if deadline is None else
                                   max(0.0, min(poll, deadline - time.monotonic())))

    # -- recovery and audit -----------------------------------------------------------------
    def recover(self) -> None:
        from .recovery import recover

        recover(self)

    def leaks(self, reap: bool = False) -> list[dict[str, Any]]:
        from .recovery import audit_leaks

        return audit_leaks(self, reap=reap)



_default: Session | None = None
_default_lock = threading.Lock()


def default_session() -> Session:
    """The process's session for the GPI, opened on first use."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Session()
            import atexit

            atexit.register(_default.close)
        return _default


def set_default_session(session: Session | None) -> None:
    global _default
    with _default_lock:
        _default = session


__all__ = ["Session", "default_session", "set_default_session"]
