"""The contract's ``events()`` long poll, shared by every backend actor.

An actor keeps its events in ``self._events`` (a deque, oldest first, each with a
rising ``seq``), the last sequence number in ``self._seq``, and signals new ones on
``self._cond`` (a Condition). This mixin answers the long poll over them.
"""

from __future__ import annotations

import collections
import threading
import time

from .base import Event


class LongPollEvents:
    _cond: threading.Condition
    _seq: int
    _events: collections.deque

    def events(self, since: int, timeout: float = 30.0, linger: float = 0.0) -> tuple[int, list[Event]]:
        """Events with seq > ``since`` as soon as there is one, else [] after ``timeout``.

        ``linger``: once the first event is there, wait up to that long for more to
        gather, so a busy backend answers with one batch rather than a call per event.
        It applies only while the stream is busy, i.e. when events were already
        waiting as the call came in: an event that the poll had to wait for goes out
        at once, so an idle backend adds no latency, and a busy one is answered in
        batches. It ends early once the actor has nothing left in flight
        (:meth:`_quiet`): the last events of a burst are not held back.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            busy = self._seq > since
            while self._seq <= since and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            if linger > 0 and busy:
                until = time.monotonic() + linger
                while (left := until - time.monotonic()) > 0 and not self._quiet():
                    self._cond.wait(left)
            while self._events and self._events[0].seq <= since:
                self._events.popleft()  # acknowledged: the contract lets us forget them
            found = list(self._events)
        return (found[-1].seq if found else since), found

    def _quiet(self) -> bool:
        """With ``_cond`` held: True when no event can come without a new request
        (nothing queued, running or being watched). Actors that can tell override it."""
        return False
