"""What the engine's parts share, and nothing more: the database session, the backend
pool, the monitor's inbox and the news that something changed.

The facade (``engine.core.Engine``) builds one context and hands it to the monitor,
the operations and recovery. None of them holds the facade, so none can call up into
it: the facade starts the monitor and runs recovery before it delegates a verb, and
the monitor calls resubmission and postprocessing directly.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..backends import base
from ..status import Cause

if TYPE_CHECKING:  # pragma: no cover
    from ..model.job import Job
    from ..repository.storage import Connection
    from ..store_session import StoreSession
    from .backend_pool import BackendPool

T = TypeVar("T")


@dataclasses.dataclass
class Submission:
    """The backend's answer to a submit, for the monitor to record."""

    pairs: list[tuple[str, int, base.Handle]]  # (fqid, attempt, handle)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    error: BaseException | None = None


class Inbox(Protocol):
    """What operations and recovery hand to the monitor (it applies them in order)."""

    def submit_results(self, submission: Submission) -> None: ...

    def inject(self, events: list[base.Event]) -> None: ...

    def run_here(self, fn: Callable[[Connection], T]) -> T: ...


class Streams(Protocol):
    """The sending of masters' subjobs that goes on after ``submit()`` returned
    (``engine/streamer.py``)."""

    def start(self, top_id: int) -> None: ...

    def stop(self, top: Job, why: str) -> None: ...


@dataclasses.dataclass(eq=False)
class EngineContext:
    store: StoreSession  # the connection, the registries, writes with retry, the queue log
    backends: BackendPool
    notify_changed: Callable[[], None]  # wakes the waiters of wait()
    inbox: Inbox | None = None  # the monitor's, once it exists
    streamer: Streams | None = None  # the engine's, once it exists
    # After a commit: these (sub)jobs' stored state may have changed (the BEX queue's
    # writer rewrites their files; the monitor tells it of backend details it recorded).
    touched: Callable[[Iterable[str]], None] = lambda fqids: None

    def new_cause(self, kind: str, after: Cause | None = None, origin: str = "") -> Cause:
        """A cause numbered in the repository (``kill #41``: ``repository.causes``); on a
        read-only one, where nothing changes, without a number."""
        repository = self.store.repository
        number = "" if repository.read_only else str(repository.causes.take())
        return Cause(kind, number, after, origin)

    @property
    def streams(self) -> Streams:
        assert self.streamer is not None, "the engine sets its streamer at its start"
        return self.streamer

    @property
    def monitor(self) -> Inbox:
        assert self.inbox is not None, "the engine sets the monitor's inbox at its start"
        return self.inbox
