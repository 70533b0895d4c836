"""The run table: an actor's runs, its queue and its cap, and the moves between them.

Pure: no process, no Ray, no clock but the events' timestamps. Every method is
called with ``stream.cond`` held (the actor changes a run and emits its event in
one step), except :meth:`RunTable.wait_settled`, which waits on it.

**Slots.** A run in ``SLOT_STATES`` takes ``run.slots`` of the ``cap`` (1 each, or
with ``cpu_slots`` its request's ``cpus``: Local's 2-CPU subjob takes 2 of its
concurrency). A ``pool`` (``backends.resources.Pool``: GPU ids, memory) is taken
from when a run starts and given back when it is done, so a lingering run keeps
its GPUs and memory until every process of it has gone.

**Who waits for whom.** Waiting runs are grouped by job (the top-level job id in
their fqid). The next to start is the oldest waiting run of the job that comes
first by (higher priority, fewer slots in use now, earlier in the queue): slots
are shared between jobs (fair share) and ``j.priority`` orders them. A run that
comes first but does not fit (slots, GPUs, memory) blocks those behind it, as
Slurm's builtin scheduler does: wide requests are not starved by narrow ones. It
is told why (its DETAIL: ``ConcurrencyLimit``, ``Resources``), with counts.

**Cost.** Jobs waiting are in a heap keyed by that order, with lazy invalidation:
a pick costs O(log jobs); within a job the queue is a deque with lazy removal, so
killing one queued subjob of 10,000 costs O(1).
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterable, Iterator

from ganga_like.backends import base
from ganga_like.backends.resources import Grant, Pool, refusal
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime.events import EventStream
from ganga_like.backends.runtime.runs import (
    CONCURRENCY_LIMIT_DETAIL,
    PRIORITY_DETAIL,
    RESOURCES_DETAIL,
    Run,
)

DROPPED_NOTE = "dropped from the queue before it started"


@dataclasses.dataclass(eq=False)
class _JobQueue:
    """One job's waiting runs, oldest first (lazy: entries whose run left are skipped)."""

    job: str
    priority: int
    arrival: int  # when its first waiting run came: the tie-break between jobs
    runs: collections.deque[tuple[int, Run]] = dataclasses.field(default_factory=collections.deque)
    waiting: int = 0
    version: int = 0  # heap entries of another version are stale (RunTable._versions)


def _live(entry: tuple[int, Run]) -> bool:
    seq, run = entry
    return run.state == rs.QUEUED and run.queued_seq == seq


class RunTable:
    """The runs of one actor by fqid, from ``submit()``/``adopt()`` to their final event.

    ``cap``: how many slots runs in :data:`~ganga_like.backends.runtime.runs.SLOT_STATES`
    may take at once (None: no limit); ``cpu_slots``: a run takes its request's CPUs
    of them (else one); ``pool``: GPUs and memory handed to runs as they start;
    ``limit``: what the cap is called in a waiting run's reason ("Local's concurrency
    limit").
    """

    def __init__(self, stream: EventStream, cap: int | None = None, *, pool: Pool | None = None,
                 cpu_slots: bool = False, limit: str = "the backend's limit") -> None:
        self.stream = stream
        self.cap = cap
        self.pool = pool
        self.cpu_slots = cpu_slots
        self.limit = limit
        self._runs: dict[str, Run] = {}
        self._counts: collections.Counter[str] = collections.Counter()
        self._used: float = 0  # slots taken by runs in SLOT_STATES
        self._in_use: collections.defaultdict[str, float] = collections.defaultdict(float)  # per job
        self._queues: dict[str, _JobQueue] = {}  # jobs with waiting runs
        self._heap: list[tuple[int, float, int, int, str]] = []  # (-priority, in use, arrival, version, job)
        self._order = itertools.count(1)  # queue order; a run put back first gets a lower one
        self._versions = itertools.count(1)  # of heap entries: see _push
        self._first = 0

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
        """How many runs are in slot states (whatever their weight)."""
        return self.count(*rs.SLOT_STATES)

    def used_slots(self) -> float:
        return self._used

    def free_slots(self) -> float:
        return math.inf if self.cap is None else max(0, self.cap - self._used)

    def queued(self) -> list[Run]:
        """The queued runs, higher priority first, then in the order they were queued
        (a run put back at the head first)."""
        found = [run for queue in self._queues.values() for entry in queue.runs if _live(entry)
                 for run in (entry[1],)]
        return sorted(found, key=lambda run: (-run.priority, run.queued_seq))

    def settled(self, fqids: Iterable[str]) -> bool:
        """No run of ``fqids`` is in a settling state (being accepted or handed over)."""
        return not any((run := self._runs.get(f)) is not None and run.state in rs.SETTLING_STATES
                       for f in fqids)

    def wait_settled(self, fqids: list[str], timeout: float) -> bool:
        """Wait (``cond`` held, released while waiting) until :meth:`settled`."""
        return self.stream.cond.wait_for(lambda: self.settled(fqids), timeout)

    # ------------------------------------------------------------------ moving

    def add(self, run: Run) -> str:
        """Take a new run; the reason it is refused ('' if taken): one run per subjob, and
        a request this actor could never hold."""
        old = self._runs.get(run.fqid)
        if old is not None:
            return f"subjob {run.fqid} is still {old.state} in this actor"
        self._size(run)
        never = self._never_fits(run)
        if never:
            return never
        run.state = rs.NEW
        self._runs[run.fqid] = run
        self._counts[rs.NEW] += 1
        return ""

    def move(self, run: Run, dst: str, cause: str, first: bool = False) -> None:
        """The one way a run changes state: checked against ``RUN_MOVES``.

        To ``queued``: at the back of its job's queue (``first``: at its head). To
        ``done``: forgotten. Slots, the job's share and the pool follow the move.
        """
        rs.check_move(run, dst, cause)
        src = run.state
        self._counts[src] -= 1
        self._counts[dst] += 1
        run.history.append((src, dst, cause))
        run.state = dst
        if (src in rs.SLOT_STATES) != (dst in rs.SLOT_STATES):
            self._share(run, run.slots if dst in rs.SLOT_STATES else -run.slots)
        if src == rs.QUEUED:
            self._leave_queue(run)
        if self.pool is not None:
            self._hold(run, src, dst)
        if dst == rs.QUEUED:
            self._enqueue(run, first)
        elif dst == rs.DONE and self._runs.get(run.fqid) is run:
            del self._runs[run.fqid]

    def admit(self, run: Run, note: str) -> bool:
        """A new run: to ``starting`` if nobody waits and it fits now (True), else queued
        with a QUEUED event whose detail and note say why (False); ``note``: the cause."""
        blocked = self._blocked(run)
        if not self.count(rs.QUEUED) and blocked is None:
            self.move(run, rs.STARTING, "accepted with a free slot")
            return True
        detail, why = blocked or (PRIORITY_DETAIL, self._behind())
        self.move(run, rs.QUEUED, note)
        self.tell(run, base.QUEUED, detail, why)
        return False

    def take_queued(self) -> list[Run]:
        """Queued runs moved to ``starting``, in the order above, while the next one fits;
        the one that does not is told why."""
        batch = []
        while (queue := self._next_queue()) is not None:
            run = self._head(queue)
            blocked = self._blocked(run)
            if blocked is not None:
                self.tell(run, base.DETAIL, *blocked)
                break
            self.move(run, rs.STARTING, "a slot freed")
            batch.append(run)
        return batch

    def take_follower(self, leader: Run) -> Run | None:
        """The queued run to start in ``leader``'s slot the moment it ends, moved to
        ``priming`` (None: nobody waits, or the next one does not fit that slot alone):
        the next in the order above, if it needs no more of the cap than ``leader``
        holds and nothing of the pool (GPUs, memory, resources are handed out as runs
        start, by :meth:`take_queued`)."""
        queue = self._next_queue()
        if queue is None:
            return None
        run = self._head(queue)
        request = run.request
        if run.slots > leader.slots or request.gpus or request.memory_mb is not None \
                or request.resources:
            return None
        self.move(run, rs.PRIMING, f"to follow {leader.fqid} in its slot")
        return run

    def finish(self, run: Run, kind: str, exit_code: int | None = None, note: str = "",
               detail: str = "") -> None:
        """The run's final event (FINISHED, KILLED or LOST) goes out; the run is done.
        ``detail``: the backend's own word for how it ended ('': the event rules' default)."""
        if run.state == rs.DONE:
            return
        self.move(run, rs.DONE, f"{kind}: {note}"[:200])
        self.stream.emit(run.fqid, kind, exit_code=exit_code, note=note, detail=detail, handle=run.handle)

    def drop(self, run: Run) -> None:
        """A queued run is killed: it ends before it started."""
        self.finish(run, base.KILLED, note=DROPPED_NOTE)

    def tell(self, run: Run, kind: str, detail: str, note: str = "") -> None:
        """A non-final event; a DETAIL only when the backend status or reason changed."""
        if kind == base.DETAIL and run.detail == (detail, note):
            return
        run.detail = (detail, note)
        self.stream.emit(run.fqid, kind, note=note, detail=detail, handle=run.handle)

    # ------------------------------------------------------------------ what fits

    def _size(self, run: Run) -> None:
        """What a new run asks for and holds: from its spec, or an adopted run's handle."""
        if run.spec is not None:
            run.request, run.priority = run.spec.request, run.spec.priority
            run.slots = run.request.cpus if self.cpu_slots else 1
        else:
            run.slots = run.handle.cpus if self.cpu_slots else 1
            run.grant = Grant(tuple(run.handle.gpu_ids), run.handle.memory_mb)

    def _never_fits(self, run: Run) -> str:
        if run.spec is None:
            return ""  # adopted: it runs already
        if self.cap is not None and run.slots > self.cap:
            return f"asks for {run.slots:g} CPUs; {self.limit} is {self.cap}"
        if self.pool is not None:
            return refusal(run.request, self.pool.capacity("this machine", None))
        return ""

    def _blocked(self, run: Run) -> tuple[str, str] | None:
        """Why ``run`` cannot start now (detail, note), or None if it fits."""
        if self.cap is not None and self._used + run.slots > self.cap:
            free = self.free_slots()
            counts = f": needs {run.slots:g}, {free:g} free" if free else ""  # some free, not enough
            return CONCURRENCY_LIMIT_DETAIL, f"{self.limit} {self.cap} reached{counts}"
        if self.pool is not None:
            short = self.pool.shortage(run.request)
            if short:
                return RESOURCES_DETAIL, short
        return None

    def _behind(self) -> str:
        queue = self._next_queue()
        if queue is None:
            return "others go first"
        head = self._head(queue)
        return f"behind {head.fqid}" + (f", which waits: {head.detail[1]}" if head.detail[1] else "")

    def _hold(self, run: Run, src: str, dst: str) -> None:
        """The pool follows the run: taken as it starts, restored when adopted, given
        back when it is done or goes back to the queue."""
        assert self.pool is not None
        if dst == rs.STARTING and src in (rs.NEW, rs.QUEUED) or (src, dst) == (rs.PRIMED, rs.RUNNING):
            run.grant = self.pool.take(run.request)  # (a follower's asks for nothing: always)
        elif src == rs.NEW and dst in (rs.RUNNING, rs.LINGERING) and run.grant is not None:
            run.grant, clash = self.pool.restore(run.grant)
            if clash:
                run.history.append((dst, dst, clash))
        elif dst in (rs.DONE, rs.QUEUED) and run.grant is not None:
            self.pool.give(run.grant)
            run.grant = None

    # ------------------------------------------------------------------ the queue

    def _share(self, run: Run, slots: float) -> None:
        self._used += slots
        self._in_use[run.job] += slots
        if not self._in_use[run.job]:
            del self._in_use[run.job]
        queue = self._queues.get(run.job)
        if queue is not None:
            self._push(queue)  # its place among the jobs changed

    def _enqueue(self, run: Run, first: bool) -> None:
        queue = self._queues.get(run.job)
        if queue is None:
            queue = self._queues[run.job] = _JobQueue(run.job, run.priority, next(self._order))
        if first:
            self._first -= 1
            run.queued_seq = self._first
            queue.runs.appendleft((run.queued_seq, run))
        else:
            run.queued_seq = next(self._order)
            queue.runs.append((run.queued_seq, run))
        queue.waiting += 1
        if queue.waiting == 1:
            self._push(queue)
        if len(queue.runs) > 64 + 2 * queue.waiting:
            queue.runs = collections.deque(e for e in queue.runs if _live(e))

    def _leave_queue(self, run: Run) -> None:
        queue = self._queues[run.job]
        queue.waiting -= 1
        if not queue.waiting:
            del self._queues[run.job]  # its heap entries are stale now

    def _push(self, queue: _JobQueue) -> None:
        # Versions come from one counter, never from the queue's own: a job whose queue
        # emptied and filled again gets a new _JobQueue, and a version counted from 0 again
        # made an old heap entry (its old arrival and share) look current.
        queue.version = next(self._versions)
        heapq.heappush(self._heap, (-queue.priority, self._in_use[queue.job], queue.arrival,
                                    queue.version, queue.job))
        if len(self._heap) > 64 + 4 * len(self._queues):
            self._heap = [(-q.priority, self._in_use[q.job], q.arrival, q.version, q.job)
                          for q in self._queues.values()]
            heapq.heapify(self._heap)

    def _next_queue(self) -> _JobQueue | None:
        """The job whose oldest waiting run goes next (stale heap entries dropped)."""
        while self._heap:
            *_, version, job = self._heap[0]
            queue = self._queues.get(job)
            if queue is not None and queue.version == version:
                return queue
            heapq.heappop(self._heap)
        return None

    @staticmethod
    def _head(queue: _JobQueue) -> Run:
        while not _live(queue.runs[0]):
            queue.runs.popleft()
        return queue.runs[0][1]
