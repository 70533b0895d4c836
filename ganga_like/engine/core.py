"""The engine's facade: the repository, the backend actors and the monitor, in one process.

This is the service's core (``ganga_like.service`` drives it); every face a user
touches is a client of the service (``ganga_like.client``). Tests and the benchmark
may open their own in-process engine (``Engine(Config(...))``). Engines write the
database; actors never do. Ganga's verbs live in ``engine/operations/``, one module
per family; the methods here start the monitor and recover where a verb needs it,
then delegate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from ..config import Config
from ..errors import WaitTimeout
from ..model import binding
from ..model.job import Job
from ..ray_runtime import before_ray_shutdown
from ..repository import open_repository
from ..repository.storage import Repository
from ..status import ACTIVE, Status
from ..store_session import StoreSession
from .backend_pool import BackendPool
from .context import EngineContext
from .log_repair import complete_queue_log
from .monitor import Monitor
from .operations import forcing, output
from .operations import kill as kill_op
from .operations import remove as remove_op
from .operations import resubmit as resubmit_op
from .operations import submit as submit_op
from .operations import unmonitor as unmonitor_op
from .operations.common import active_set as _active_set  # noqa: F401  (tests, recovery)
from .operations.submit import split as _split  # noqa: F401  (tests)
from .audit import audit_leaks
from .recovery import recover


class Engine(StoreSession):
    """The repository plus the backend actors and the monitor: the service's core.

    The service runs one; tests and the benchmark may open their own in-process
    (``Engine(Config(...))``), which then owns the FileStorage directly. The monitor,
    the operations and recovery get the engine's context (``context.EngineContext``),
    never the engine: a verb that touches running work starts the monitor and recovers
    here, before it is delegated."""

    def __init__(self, config: Config | None = None, read_only: bool | None = None,
                 fallback_read_only: bool = False, repository: Repository | None = None) -> None:
        config = config or Config.from_env()
        if repository is None:
            repository = open_repository(config, read_only=read_only,
                                         fallback_read_only=fallback_read_only)
        super().__init__(config, repository)
        self._changed = threading.Condition()
        self.context = EngineContext(store=self, backends=BackendPool(self.repo_uuid),
                                     notify_changed=self.notify_changed)
        self.monitor = Monitor(self.context)
        self.context.inbox = self.monitor
        self._recovered = False

    @property
    def backends(self) -> BackendPool:
        return self.context.backends

    def notify_changed(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def ensure_monitor(self) -> None:
        """Start the monitor, and recover what earlier sessions (or a dead actor) left."""
        if not self.monitor.running:
            self.monitor.start()
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
        self.context.backends.shutdown()
        super().close()

    def __enter__(self) -> Engine:
        return self

    # -- Ganga's verbs (engine/operations/) ----------------------------------------------
    def submit(self, job: Job, keep_going: bool = False,
               environment: dict[str, str] | None = None) -> Job:
        """Submit ``job``; its payloads get ``environment`` (default: this process's)."""
        self.ensure_monitor()  # recovers earlier sessions' work before adding ours
        return submit_op.submit(self.context, job, keep_going=keep_going, environment=environment)

    def kill(self, job: Job) -> None:
        self.ensure_monitor()
        kill_op.kill(self.context, job)

    def resubmit(self, job: Job, force: bool = False, include_killed: bool = False) -> None:
        self.ensure_monitor()
        resubmit_op.resubmit(self.context, job, force=force, include_killed=include_killed)

    def remove(self, job: Job, force: bool = False) -> None:
        self.ensure_monitor()
        remove_op.remove(self.context, job, force=force)

    def force_status(self, job: Job, status: str, force: bool = False) -> None:
        self.ensure_monitor()
        forcing.force_status(self.context, job, status, force=force)

    def freeze(self, job: Job) -> None:
        forcing.freeze(self.context, job)

    def unfreeze(self, job: Job) -> None:
        forcing.unfreeze(self.context, job)

    def unmonitor(self, job: Job) -> None:
        unmonitor_op.unmonitor(self.context, job)

    def peek(self, job: Job, file: str = "stdout", lines: int = 20) -> str:
        return output.peek(self.context, job, file=file, lines=lines)

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
                raise WaitTimeout(timeout, [j.fqid for j, s in zip(jobs, statuses) if s in ACTIVE])
            with self._changed:
                self._changed.wait(poll if deadline is None else
                                   max(0.0, min(poll, deadline - time.monotonic())))

    # -- recovery and audit -----------------------------------------------------------------
    def recover(self) -> None:
        recover(self.context)

    def leaks(self, reap: bool = False) -> list[dict[str, Any]]:
        return audit_leaks(self.context, reap=reap)


def set_default_session(session: Any) -> None:
    """Make ``session`` the one that jobs not yet stored use (tests, tools)."""
    binding.set_default(session)


__all__ = ["Engine", "set_default_session"]
