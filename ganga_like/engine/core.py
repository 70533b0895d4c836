"""The engine's facade: the repository, the backend actors and the monitor, in one process.

This is the service's core (``ganga_like.service`` drives it); every face a user
touches is a client of the service (``ganga_like.client``). Tests and the benchmark
may open their own in-process engine (``Engine(Config(...))``). Engines write the
database; actors never do. Ganga's verbs are declared once, in
``model.session.JobSession`` (the engine inherits them); each names its operation
(``engine/operations/``, one module per family): ``run_verb`` starts the monitor and
recovers where the verb says so, then runs it.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..bex.files import QueueDir
from ..channel.origin import this_process
from ..config import Config
from ..errors import WaitTimeout
from ..model import binding
from ..model.job import Job
from ..model.session import JOB_VERBS, JobSession, Lock, Verb, check_args
from ..model.writes import Change, acting_as
from ..ray_runtime import before_ray_shutdown
from ..repository import open_repository
from ..repository.index_build import ensure_indexes
from ..repository.storage import Repository
from ..status import ACTIVE, FINAL, Status
from ..store_session import StoreSession
from .backend_pool import BackendPool
from .bex_writer import BexWriter
from .context import EngineContext
from .log_repair import complete_queue_log
from .monitor import Monitor
from .operations.common import active_set as _active_set  # noqa: F401  (tests, recovery)
from .operations.submit import split as _split  # noqa: F401  (tests)
from .recovery import recover
from .streamer import Streamer

FACADE = "engine.core:Engine."  # an operation of the facade itself (wait), not of the context
WAIT_POLL = 0.5  # the longest a wait sleeps between looks, unless a change wakes it first
ENDED = frozenset(status.value for status in FINAL)
BEX_ENDED_WAIT = 2.0  # seconds a commit that ended attempts waits for the BEX queue's files


def operation_of(verb: Verb) -> Callable[..., object]:
    """The function a verb of the table names (``module:qualname`` under ganga_like)."""
    module, _, qualname = verb.operation.partition(":")
    found: object = importlib.import_module(f"ganga_like.{module}")
    for part in qualname.split("."):
        found = getattr(found, part)
    assert callable(found), verb.operation
    return found


class Engine(StoreSession, JobSession[Job]):
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
        self.streamer = Streamer(self.context)
        self.context.streamer = self.streamer
        self._recovered = False
        self.bex: BexWriter | None = None
        if not self.read_only:
            ensure_indexes(self.main)  # a repository written before them, or one found wrong
            # The BEX queue follows the database (written here only).
            self.bex = BexWriter(repository, QueueDir(config.bex_queue, config.keep_history))
            self.context.touched = self.bex.notice
            self.bex.start()
            self.bex.repair(self.main.root.active_ids or ())  # what a crash left unwritten

    def on_commit(self, changes: list[Change]) -> None:
        super().on_commit(changes)  # the queue log
        self.context.touched(change.fqid for change in changes)
        ended = [change.fqid for change in changes if change.target in ENDED]
        if self.bex is not None and ended:
            # An attempt ended: its files (its end, its transcript) are written before this
            # thread goes on to anything that could start the next one (auto-resubmission).
            self.bex.settle(ended, BEX_ENDED_WAIT)

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
        self.streamer.close()  # between batches: the rest is sent by the next engine
        self.monitor.stop()
        self.context.backends.shutdown()
        if self.bex is not None:
            self.bex.stop()
        super().close()

    def __enter__(self) -> Engine:
        return self

    # -- Ganga's verbs: declared in model.session.JobSession, run here ---------------------
    def run_verb(self, name: str, /, **args: object) -> Any:
        """Run one verb of the table, asked for by this process (see ``run_verb_from``):
        what the verb takes from its caller when not given (``from_caller``: the
        environment, Ganga's session options) is this process's, as a client sends its own."""
        for param, filler in JOB_VERBS[name].from_caller:
            if args.get(param) is None:
                args[param] = filler()
        return self.run_verb_from(this_process(), name, **args)

    def run_verb_from(self, origin: str, name: str, /, **args: object) -> object:
        """Run one verb of the table for ``origin`` (who asked: ``channel.origin``): start
        the monitor (and recover what earlier sessions left) where the verb touches running
        work, then its operation, on the engine's context (the facade's own ``wait`` on the
        facade). A verb that writes names one cause, "<verb> #<id> from <origin>", which
        every status change it makes carries."""
        verb = JOB_VERBS[name]
        check_args(verb, args)
        self.check_verb(verb)  # read-only: refused before anything is done
        if verb.monitor:
            self.ensure_monitor()  # recovers earlier sessions' work before adding ours
        on = self if verb.operation.startswith(FACADE) else self.context
        cause = self.context.new_cause(name, origin=origin) if verb.lock is Lock.WRITE else None
        with acting_as(cause):
            return _OPERATIONS[name](on, **args)

    def wait_until_final(self, jobs: Iterable[Job], timeout: float | None = None, poll: float | None = None,
                         refresh: Callable[[], None] | None = None) -> list[Status]:
        """The ``wait`` verb's operation (``wait`` itself is the table's, as every verb's):
        block until every job is final (or new again); return their statuses.

        ``refresh``: how to see new commits when the jobs were read through another
        connection than this session's own (the service waits for many clients at once)."""
        jobs = list(jobs)
        poll = WAIT_POLL if poll is None else poll
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
                pending = [j.fqid for j, s in zip(jobs, statuses, strict=True) if s in ACTIVE]
                raise WaitTimeout(timeout, pending)
            with self._changed:
                self._changed.wait(poll if deadline is None else
                                   max(0.0, min(poll, deadline - time.monotonic())))

    # -- recovery ---------------------------------------------------------------------------
    def recover(self) -> None:
        recover(self.context)


# Every verb's operation, resolved once (a name the table gets wrong fails at import).
_OPERATIONS: dict[str, Callable[..., object]] = {name: operation_of(verb)
                                                 for name, verb in JOB_VERBS.items()}


def set_default_session(session: JobSession[Job] | None) -> None:
    """Make ``session`` the one that jobs not yet stored use (tests, tools)."""
    binding.set_default(session)


__all__ = ["Engine", "set_default_session"]
