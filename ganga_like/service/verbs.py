"""What a client may ask the service, verb by verb.

Verbs that change running work (submit, kill, resubmit, remove, ...) run one at
a time on the service's own connection, under one lock: the operations were
written for one user's thread, and a verb that waits on a backend holds no
database transaction meanwhile. Reading verbs (peek, wait, status) run at once,
each on a connection of its own, so a long ``wait`` never holds up a kill.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ZODB.utils import p64, u64

from ..engine.core import Engine
from ..errors import GangaLikeError

TID_WAIT = 10.0  # longest wait for a client's commit to reach the service's view


class Verbs:
    def __init__(self, session: Engine, info: Callable[[], dict[str, Any]],
                 stop: Callable[[str], None]) -> None:
        self.session = session
        self._info = info
        self._stop = stop
        self._lock = threading.Lock()
        self.table: dict[str, Callable[..., Any]] = {
            "hello": self.hello, "status": self.status, "stop": self.stop,
            "submit": self.submit, "kill": self.kill, "resubmit": self.resubmit,
            "remove": self.remove, "force_status": self.force_status, "freeze": self.freeze,
            "unfreeze": self.unfreeze, "unmonitor": self.unmonitor, "leaks": self.leaks,
            "peek": self.peek, "wait": self.wait,
        }

    # -- the database view a verb works on ----------------------------------------
    def last_tid(self) -> str:
        return "%016x" % u64(self.session.repository.db.lastTransaction())

    def catch_up(self, tid: str) -> None:
        """Wait until the service has seen the client's last commit (``tid``)."""
        if not tid:
            return
        wanted = p64(int(tid, 16))
        storage = self.session.repository.db.storage
        deadline = time.monotonic() + TID_WAIT
        while storage.lastTransaction() < wanted and time.monotonic() < deadline:
            time.sleep(0.0005)

    def locked(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` on the service's own connection, one at a time."""
        with self._lock:
            self.session.refresh()
            return work()

    def recover_if_needed(self) -> None:
        """A backend actor died: recover its work now (no verb needs to come first)."""
        if self.session.monitor.recovery_needed.is_set():
            self.locked(self.session.ensure_monitor)

    def _job(self, fqid: str) -> Any:
        return self.session.jobs.get(fqid)

    # -- the verbs ----------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        return self._info()

    def status(self) -> dict[str, Any]:
        return self._info()

    def stop(self) -> str:
        self._stop("asked by a client")
        return "stopping"

    def submit(self, fqid: str, keep_going: bool = False,
               environment: dict[str, str] | None = None) -> str:
        def work() -> str:
            job = self._job(fqid)
            self.session.submit(job, keep_going=keep_going, environment=environment)
            return job.status.value
        return self.locked(work)

    def _simple(self, verb: str, fqid: str, **kwargs: Any) -> str:
        def work() -> str:
            job = self._job(fqid)
            getattr(self.session, verb)(job, **kwargs)
            if verb == "remove":
                return "removed"
            self.session.refresh()
            return job.status.value
        return self.locked(work)

    def kill(self, fqid: str) -> str:
        return self._simple("kill", fqid)

    def resubmit(self, fqid: str, force: bool = False, include_killed: bool = False) -> str:
        return self._simple("resubmit", fqid, force=force, include_killed=include_killed)

    def remove(self, fqid: str, force: bool = False) -> str:
        return self._simple("remove", fqid, force=force)

    def force_status(self, fqid: str, status: str, force: bool = False) -> str:
        return self._simple("force_status", fqid, status=status, force=force)

    def freeze(self, fqid: str) -> str:
        return self._simple("freeze", fqid)

    def unfreeze(self, fqid: str) -> str:
        return self._simple("unfreeze", fqid)

    def unmonitor(self, fqid: str) -> str:
        return self._simple("unmonitor", fqid)

    def leaks(self, reap: bool = False) -> list[dict[str, Any]]:
        return self.locked(lambda: self.session.leaks(reap=reap))

    def peek(self, fqid: str, file: str = "stdout", lines: int = 20) -> str:
        with self._reader() as conn:
            return self.session.peek(conn.jobs.get(fqid), file=file, lines=lines)

    def wait(self, fqids: list[str], timeout: float | None = None) -> list[str]:
        with self._reader() as conn:
            jobs = [conn.jobs.get(fqid) for fqid in fqids]
            statuses = self.session.wait(jobs, timeout=timeout, poll=0.5, refresh=conn.refresh)
            return [s.value for s in statuses]

    def _reader(self) -> _Reader:
        return _Reader(self.session)


class _Reader:
    """A connection of its own for one reading verb, closed afterwards."""

    def __init__(self, session: Engine) -> None:
        self.conn = session.repository.connect()

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def dispatch(verbs: Verbs, request: dict[str, Any]) -> Any:
    name = request.get("verb")
    handler = verbs.table.get(str(name))
    if handler is None:
        raise GangaLikeError(f"unknown request {name!r}; the service knows: "
                             + ", ".join(sorted(verbs.table)))
    verbs.catch_up(str(request.get("tid") or ""))
    return handler(**dict(request.get("args") or {}))


__all__ = ["Verbs", "dispatch"]
