"""A Session: the repository, the backend actors and the monitor, in one process.

This is the service's core (``ganga_like.service``); every face a user touches
is a client of the service (``ganga_like.client``). Tests and the benchmark may
open their own in-process session (``Session(Config(...))``). Sessions write
the database; actors never do. Ganga's verbs live in ``ganga_like/operations/``,
one module per family; the methods here delegate to them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .config import Config
from .log_repair import complete_queue_log
from .model import binding
from .model.job import Job
from .monitor import Monitor
from .operations import forcing, output
from .operations import kill as kill_op
from .operations import remove as remove_op
from .operations import resubmit as resubmit_op
from .operations import submit as submit_op
from .operations import unmonitor as unmonitor_op
from .operations.common import active_set as _active_set  # noqa: F401  (tests, recovery)
from .operations.submit import split as _split  # noqa: F401  (tests)
from .repository import open_repository
from .repository.storage import Repository
from .status import ACTIVE, Status
from .store_session import StoreSession

if TYPE_CHECKING:  # pragma: no cover
    from .backend_pool import BackendPool


class Session(StoreSession):
    """The repository plus the backend actors and the monitor: the service's core.

    The service runs one; tests and the benchmark may open their own in-process
    (``Session(Config(...))``), which then owns the FileStorage directly."""

    def __init__(self, config: Config | None = None, read_only: bool | None = None,
                 fallback_read_only: bool = False, repository: Repository | None = None) -> None:
        config = config or Config.from_env()
        if repository is None:
            repository = open_repository(config, read_only=read_only,
                                         fallback_read_only=fallback_read_only)
        super().__init__(config, repository)
        self._backends: BackendPool | None = None
        self.monitor = Monitor(self)
        self._changed = threading.Condition()
        self._recovered = False

    @property
    def backends(self) -> Any:
        if self._backends is None:
            from .backend_pool import BackendPool

            self._backends = BackendPool(self.repo_uuid)
        return self._backends

    def notify_changed(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def ensure_monitor(self) -> None:
        if not self.monitor.running:
            self.monitor.start()
            from .ray_runtime import before_ray_shutdown

            before_ray_shutdown(self.close)  # the whole session, while Ray still runs
        if not self._recovered:
            self._recovered = True
            complete_queue_log(self)  # before recovery moves anything on
            self.recover()
        elif self.monitor.recovery_needed.is_set():
            self.monitor.recovery_needed.clear()  # a backend actor died: adopt its work
            self.recover()

    def close(self) -> None:
        if self._closed:
            return
        self.monitor.stop()
        if self._backends is not None:
            self._backends.shutdown()
        super().close()

    def __enter__(self) -> "Session":
        return self

    # -- Ganga's verbs (ganga_like/operations/) ------------------------------------------
    def submit(self, job: Job, keep_going: bool = False,
               environment: dict[str, str] | None = None) -> Job:
        """Submit ``job``; its payloads get ``environment`` (default: this process's)."""
        return submit_op.submit(self, job, keep_going=keep_going, environment=environment)

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
             poll: float = 0.5, refresh: Any = None) -> list[Status]:
        """Block until every job is final (or new again); return their statuses.

        ``refresh``: how to see new commits when the jobs were read through another
        connection than this session's own (the service waits for many clients at once)."""
        jobs = list(jobs)
        # Jobs read through this session's own connection: the caller is its user, who
        # may start the monitor and recover. Through another (the service's readers):
        # the service's own threads do that, under its verb lock.
        own = refresh is None
        refresh = refresh or self.refresh
        if own and any(j.status in ACTIVE for j in jobs):
            self.ensure_monitor()
        deadline = None if timeout is None else time.monotonic() + timeout
        tops = {top.id for top in (j.master or j for j in jobs) if top.id is not None}
        while True:
            if own and self.monitor.recovery_needed.is_set():
                self.ensure_monitor()  # in-process: a dead actor's work is recovered here
            refresh()
            statuses = [j.status for j in jobs]
            # Final, and the master-level postprocessors (mergers) have run too.
            if all(s not in ACTIVE for s in statuses) and not self.monitor.postprocessing(tops):
                self.monitor.settle()  # the queue log holds the final lines too
                return statuses
            if timeout is not None and deadline is not None and time.monotonic() >= deadline:
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


def set_default_session(session: Any) -> None:
    """Make ``session`` the one that jobs not yet stored use (tests, tools)."""
    binding.set_default(session)


__all__ = ["Session", "set_default_session"]
