"""New objects kept whole across the retries of the write that first stores them.

A write is retried when its commit conflicts (``transactions.write``). Through a ZEO
server, the conflict comes at the vote, after the objects were stored, and ZODB's
``Connection.tpc_abort`` then invalidates every object it stored and disowns the new
ones: an object added with ``Connection.add`` is left a ghost with no connection, its
state gone, and no load can fill it (its oid was never committed). Stored again by the
next attempt, it fails with ``POSKeyError``. Seen on a fresh repository: a script's
first ``Job(...)`` was registered while the service allocated an id of its own.

So :class:`Snapshot` takes the state of every new persistent object reachable from a
user's object before the write, and puts back, at the start of each attempt, the state
of any that a failed attempt left an empty ghost.
"""

from __future__ import annotations

from typing import Any

from persistent import Persistent


class Snapshot:
    """The states of the persistent objects reachable from ``root`` that are not
    stored yet (no connection), as they are now."""

    def __init__(self, root: Persistent) -> None:
        self._states = [(obj, obj.__getstate__()) for obj in _unstored(root)]

    @property
    def objects(self) -> list[Persistent]:
        """The objects whose states it keeps (stored ones end the walk: not among them)."""
        return [obj for obj, _ in self._states]

    def restore(self) -> None:
        """Give back its state to each object that a failed attempt left an empty ghost
        with no connection; the others are as the attempt left them."""
        for obj, state in self._states:
            if obj._p_jar is None and obj._p_changed is None:
                _refill(obj, state)


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


def _unstored(root: Persistent) -> list[Persistent]:
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
