"""New objects kept whole across the retries of the write that first stores them.

A user's new objects (a job being registered, a component assigned to a stored job)
are made outside the write that stores them, so every attempt of that write stores
the same Python objects. ZODB leaves them unfit for the next attempt in two ways:

* **a commit that fails at the vote** (a conflict: through a ZEO server it comes
  after the objects were stored): ``Connection.tpc_abort`` invalidates every object it
  stored and disowns the new ones; an object added with ``Connection.add`` is left a
  ghost with no connection, its state gone, and no load can fill it (its oid was
  never committed). Stored again by the next attempt, it fails with ``POSKeyError``.
  Seen on a fresh repository: a script's first ``Job(...)`` was registered while the
  service allocated an id of its own.
* **a commit cut off while it stores** (the database server went away: ZEO's
  ``ClientDisconnected`` from ``store``): ZODB disowns only the objects it had put in
  its cache. The object whose store failed, and those its pickles had just given an
  oid, keep that oid and the connection, though no commit stored them. The next
  attempt only refers to them by that oid and never stores them: the job committed
  pointed at nothing (``POSKeyError`` on reading its application). Worse, a server
  started again counts oids from the highest committed one, so it hands that oid out
  again: the job's application then read another object, or the client's next new
  object failed with "A different object already has the same oid" (seen in the
  crowd soak: a service stopped and killed among four scripts making jobs).

So :class:`Snapshot` takes the state of every new persistent object reachable from
the user's value before the write, and at the start of each attempt disowns any that
a failed attempt left with an oid but stored by no commit, and gives its state back
to any that it left an empty ghost.
"""

from __future__ import annotations

from typing import Any

from persistent import Persistent
from ZODB.utils import z64


class Snapshot:
    """The states of the persistent objects reachable from ``root`` (an object, or a
    value holding some: a list, a dict) that are not stored yet (no connection), as
    they are now."""

    def __init__(self, root: object) -> None:
        self._states = [(obj, obj.__getstate__()) for obj in _unstored(root)]

    @property
    def objects(self) -> list[Persistent]:
        """The objects whose states it keeps (stored ones end the walk: not among them)."""
        return [obj for obj, _ in self._states]

    def restore(self) -> None:
        """Before an attempt: make each object as the user made it, new to the
        database. One that a failed attempt left owned by its connection without a
        commit is disowned; one that it left an empty ghost gets its state back; the
        others are as the attempt left them."""
        for obj, state in self._states:
            if obj._p_jar is not None and obj._p_serial == z64:
                _disown(obj)
            if obj._p_jar is None and obj._p_changed is None:
                _refill(obj, state)


def _disown(obj: Persistent) -> None:
    """Drop the oid and the connection that a commit cut off while it stored left on
    ``obj``. (ZODB refuses for an object in its connection's cache: one it stored, and
    disowns itself when the commit fails; that one is left to it.)"""
    try:
        del obj._p_jar
    except ValueError:
        return
    del obj._p_oid


class _Refill:
    """A stand-in connection for one load: ``persistent`` fills a ghost only through its
    connection's ``setstate``."""

    def __init__(self, state: Any) -> None:
        self._state = state

    def setstate(self, obj: Persistent) -> None:
        obj.__setstate__(self._state)

    def register(self, obj: Persistent) -> None:
        pass  # (never called: the object is not changed while it is being filled)


def _refill(obj: Persistent, state: Any) -> None:
    obj._p_jar = _Refill(state)
    try:
        obj._p_activate()
    finally:
        del obj._p_jar


def _unstored(root: object) -> list[Persistent]:
    """The persistent objects without a connection reachable from ``root`` through the
    states of such objects (values, containers), each once; stored ones end the walk."""
    found: list[Persistent] = []
    seen: set[int] = set()
    stack: list[Any] = [root]
    while stack:
        value = stack.pop()
        if isinstance(value, Persistent):
            if value._p_jar is not None or id(value) in seen:
                continue
            seen.add(id(value))
            found.append(value)
            stack.append(value.__getstate__())
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend(value)
    return found
