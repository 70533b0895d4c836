"""The event stream every backend actor owns: the contract's ``events()`` long poll.

One :class:`EventStream` per actor holds the events not yet acknowledged (oldest
first, each with a rising ``seq``) and the one Condition the actor's records are
guarded by: an actor changes its runs and emits their events under ``stream.cond``
in one step, so a poll never sees a run's new state without its event.

Sequence numbers start at the stream's creation time in microseconds: a restarted
actor's numbers are above its predecessor's, so a monitor's ``since`` stays valid.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from ganga_like.backends.base import Event, Handle


class EventStream:
    """Events with rising sequence numbers, and the long poll over them.

    ``quiet``: called with ``cond`` held; True when no event can come without a
    new request (nothing queued, running or watched). It ends a poll's linger early,
    so the last events of a burst are not held back.
    """

    def __init__(self, quiet: Callable[[], bool] = lambda: False, start: int | None = None) -> None:
        lock = threading.Lock()
        self.cond = threading.Condition(lock)
        # A lingering poll waits here, on the same lock, woken only when an event leaves
        # the actor quiet: waiting on ``cond`` it woke at every change the actor notified
        # (about three per subjob), each wake-up a trip for the GIL between threads.
        self._quieted = threading.Condition(lock)
        self.seq = time.time_ns() // 1000 if start is None else start
        self._events: collections.deque[Event] = collections.deque()
        self._quiet = quiet

    def emit(self, fqid: str, kind: str, exit_code: int | None = None, note: str = "",
             detail: str = "", handle: Handle | None = None) -> Event:
        """Append one event (``cond`` held by the caller); pollers are woken by the
        caller's ``cond.notify_all()`` once its whole change is made."""
        self.seq += 1
        event = Event(self.seq, fqid, kind, time.time(), exit_code, note, detail, handle)
        self._events.append(event)
        if self._quiet():  # the actor's last event for now: a lingering poll answers at once
            self._quieted.notify_all()
        return event

    def snapshot(self, fqid: str, kind: str, exit_code: int | None = None, note: str = "",
                 detail: str = "", handle: Handle | None = None) -> Event:
        """An event describing where a subjob is now, not part of the stream: its ``seq``
        is the stream position it describes (``adopt()`` answers with these)."""
        with self.cond:
            return Event(self.seq, fqid, kind, time.time(), exit_code, note, detail, handle)

    def pending(self) -> int:
        """How many events are held (not yet acknowledged by a poll)."""
        return len(self._events)

    def poll(self, since: int, timeout: float = 30.0, linger: float = 0.0) -> tuple[int, list[Event]]:
        """Events with seq > ``since`` as soon as there is one, else [] after ``timeout``.

        ``linger``: once the first event is there, wait up to that long for more to
        gather, so a busy backend answers with one batch rather than a call per event.
        It applies only while the stream is busy, i.e. when events were already
        waiting as the call came in: an event that the poll had to wait for goes out
        at once, so an idle backend adds no latency. It ends early once an event
        leaves the actor quiet (a quiet that comes without an event, e.g. a refused
        run, waits out the linger).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self.cond:
            busy = self.seq > since
            while self.seq <= since and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            if linger > 0 and busy:
                until = time.monotonic() + linger
                while (left := until - time.monotonic()) > 0 and not self._quiet():
                    self._quieted.wait(left)
            while self._events and self._events[0].seq <= since:
                self._events.popleft()  # acknowledged: the contract lets us forget them
            found = list(self._events)
        return (found[-1].seq if found else since), found
