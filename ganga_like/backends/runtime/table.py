"""The run table: an actor's runs, its queue and its cap, and the moves between them.

Pure: no process, no Ray, no clock but the events' timestamps. Every method is
called with ``stream.cond`` held (the actor changes a run and emits its event in
one step), except :meth:`RunTable.wait_settled`, which waits on it.

The queue is first in, first out, with lazy removal: a run that leaves ``queued``
(killed, or picked by a scheduler out of order) stays in the deque and is skipped
when reached, so a kill of one queued subjob among 10,000 costs O(1).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Iterator

from ganga_like.backends import base
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime.events import EventStream
from ganga_like.backends.runtime.runs import QUEUED_DETAIL, Run

DROPPED_NOTE = "dropped from the queue before it started"


class RunTable:
    """The runs of one actor by fqid, from ``submit()``/``adopt()`` to their final event.

    ``cap``: how many runs may be in :data:`~ganga_like.backends.runtime.runs.SLOT_STATES`
    at once (None: no limit).
    """

    def __init__(self, stream: EventStream, cap: int | None = None) -> None:
        self.stream = stream
        self.cap = cap
        self._runs: dict[str, Run] = {}
        self._queue: collections.deque[Run] = collections.deque()
        self._counts: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------ reading

    def get(self, fqid: str) -> Run | None:
        return self._runs.get(fqid)

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._runs.values()))

    def count(self, *states: str) -> int:
        return sum(self._counts[state] for state in states)

    def in_slots(self) -> int:
        return self.count(*rs.SLOT_STATES)

    def free_slots(self) -> float:
        return math.inf if self.cap is None else max(0, self.cap - self.in_slots())

    def queued(self) -> list[Run]:
        """The queued runs, oldest first."""
        seen: set[int] = set()
        found = []
        for run in self._queue:
            if run.state == rs.QUEUED and id(run) not in seen:
                seen.add(id(run))
                found.append(run)
        return found

    def settled(self, fqids: Iterable[str]) -> bool:
        """No run of ``fqids`` is in a settling state (being accepted or handed over)."""
        return not any((run := self._runs.get(f)) is not None and run.state in rs.SETTLING_STATES
                       for f in fqids)

    def wait_settled(self, fqids: list[str], timeout: float) -> bool:
        """Wait (``cond`` held, released while waiting) until :meth:`settled`."""
        return self.stream.cond.wait_for(lambda: self.settled(fqids), timeout)

    # ------------------------------------------------------------------ moving

    def add(self, run: Run) -> str:
        """Take a new run; the reason it is refused ('' if taken): one run per subjob."""
        old = self._runs.get(run.fqid)
        if old is not None:
            return f"subjob {run.fqid} is still {old.state} in this actor"
        run.state = rs.NEW
        self._runs[run.fqid] = run
        self._counts[rs.NEW] += 1
        return ""

    def move(self, run: Run, dst: str, cause: str, first: bool = False) -> None:
        """The one way a run changes state: checked against ``RUN_MOVES``.

        To ``queued``: at the back of the queue (``first``: at its head). To
        ``done``: forgotten.
        """
        rs.check_move(run, dst, cause)
        self._counts[run.state] -= 1
        self._counts[dst] += 1
        run.history.append((run.state, dst, cause))
        run.state = dst
        if dst == rs.QUEUED:
            (self._queue.appendleft if first else self._queue.append)(run)
            self._compact()
        elif dst == rs.DONE and self._runs.get(run.fqid) is run:
            del self._runs[run.fqid]

    def admit(self, run: Run, note: str) -> bool:
        """A new run: to ``starting`` if a slot is free and nobody waits (True), else
        queued with a QUEUED event carrying ``note`` (False)."""
        if not self.count(rs.QUEUED) and self.free_slots() > 0:
            self.move(run, rs.STARTING, "accepted with a free slot")
            return True
        self.move(run, rs.QUEUED, note)
        self.tell(run, base.QUEUED, QUEUED_DETAIL, note)
        return False

    def take_queued(self) -> list[Run]:
        """Queued runs, oldest first, moved to ``starting`` while slots are free."""
        batch = []
        while self._queue and self.free_slots() > 0:
            run = self._queue.popleft()
            if run.state == rs.QUEUED:
                self.move(run, rs.STARTING, "a slot freed")
                batch.append(run)
        return batch

    def finish(self, run: Run, kind: str, exit_code: int | None = None, note: str = "") -> None:
        """The run's final event (FINISHED, KILLED or LOST) goes out; the run is done."""
        if run.state == rs.DONE:
            return
        self.move(run, rs.DONE, f"{kind}: {note}"[:200])
        self.stream.emit(run.fqid, kind, exit_code=exit_code, note=note, handle=run.handle)

    def drop(self, run: Run) -> None:
        """A queued run is killed: it ends before it started."""
        self.finish(run, base.KILLED, note=DROPPED_NOTE)

    def tell(self, run: Run, kind: str, detail: str, note: str = "") -> None:
        """A non-final event; a DETAIL only when the backend status or reason changed."""
        if kind == base.DETAIL and run.detail == (detail, note):
            return
        run.detail = (detail, note)
        self.stream.emit(run.fqid, kind, note=note, detail=detail, handle=run.handle)

    def _compact(self) -> None:
        if len(self._queue) > 64 + 2 * self._counts[rs.QUEUED]:
            self._queue = collections.deque(self.queued())
