"""What a client may ask the service: the verb table (``channel.verbs``), dispatched.

Verbs that change running work (``Lock.WRITE``: submit, kill, resubmit, remove, ...)
run one at a time on the service's own connection, under one lock: the operations
were written for one user's thread, and a verb that waits on a backend holds no
database transaction meanwhile. Reading verbs (``Lock.READ``: peek, wait) run at
once, each on a connection of its own, so a long ``wait`` never holds up a kill; at
a stop, a ``wait`` ends at its next look (``stopping`` raises), and the client asks
the next service.
The service's own verbs (hello, status, web, stop) are the methods of the same names here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from ..channel.origin import cleaned
from ..channel.verbs import VERBS, answer, call_args, catch_up, seen_tid
from ..engine.core import Engine
from ..errors import GangaLikeError
from ..model.session import Lock, Verb

T = TypeVar("T")
Info = Callable[[], Mapping[str, object]]
Web = Callable[[str], Mapping[str, object]]
Pack = Callable[[], Mapping[str, object]]


class Verbs:
    def __init__(self, session: Engine, info: Info, stop: Callable[[str], None],
                 web: Web | None = None, pack: Pack | None = None,
                 stopping: Callable[[], None] = lambda: None) -> None:
        self.session = session
        self._stopping = stopping
        self._info = info
        self._stop = stop
        self._web = web
        self._pack = pack
        self._lock = threading.Lock()

    # -- the database view a verb works on ----------------------------------------
    def last_tid(self) -> str:
        return seen_tid(self.session.repository.db)

    def catch_up(self, tid: str) -> None:
        """Wait until the service has seen the client's last commit (``tid``)."""
        catch_up(self.session.repository.db, tid)

    def locked(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the service's own connection, one at a time."""
        with self._lock:
            self.session.refresh()
            return work()

    def recover_if_needed(self) -> None:
        """A backend actor died: recover its work now (no verb needs to come first)."""
        if self.session.monitor.recovery_needed.is_set():
            self.locked(self.session.ensure_monitor)

    # -- a verb of the table --------------------------------------------------------
    def run(self, verb: Verb, wire: Mapping[str, object], origin: str = "a client") -> object:
        """Carry out ``verb`` as the table says, with a request's arguments, for ``origin``
        (who asked, as the request said: the causes of what it changes name it)."""
        if verb.lock is Lock.NONE:
            own: Callable[..., object] = getattr(self, verb.name)
            return own(**call_args(verb, wire, str))  # (a request that does not fit: TypeError)
        if verb.lock is Lock.WRITE:
            def work() -> object:
                args = call_args(verb, wire, self.session.jobs.get)
                value = self.session.run_verb_from(origin, verb.name, **args)
                if verb.result.reports_job_status:
                    self.session.refresh()
                return answer(verb, value, args)
            return self.locked(work)
        conn = self.session.repository.connect()  # Lock.READ: a connection of its own
        try:
            args = call_args(verb, wire, conn.jobs.get)
            if verb.long:
                def look_again() -> None:  # the jobs are read there: look again there
                    self._stopping()
                    conn.refresh()
                args["refresh"] = look_again
            return answer(verb, self.session.run_verb_from(origin, verb.name, **args), args)
        finally:
            conn.close()

    # -- the service's own verbs ----------------------------------------------------------
    def hello(self) -> Mapping[str, object]:
        return self._info()

    def status(self) -> Mapping[str, object]:
        return self._info()

    def web(self, listen: str = "") -> Mapping[str, object]:
        if self._web is None:
            raise GangaLikeError("this service has no web view")
        return self._web(listen)

    def pack(self) -> Mapping[str, object]:
        if self._pack is None:
            raise GangaLikeError("this service does not pack its database")
        return self._pack()

    def stop(self) -> str:
        self._stop("asked by a client")
        return "stopping"


def dispatch(verbs: Verbs, request: Mapping[str, object]) -> object:
    name = request.get("verb")
    verb = VERBS.get(str(name))
    if verb is None:
        raise GangaLikeError(f"unknown request {name!r}; the service knows: "
                             + ", ".join(sorted(VERBS)))
    verbs.catch_up(str(request.get("tid") or ""))
    wire = request.get("args") or {}
    assert isinstance(wire, Mapping), wire
    return verbs.run(verb, wire, cleaned(request.get("from")))


__all__ = ["Verbs", "dispatch"]
