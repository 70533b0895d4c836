"""How a Job's verbs (``j.submit()``, ``j.kill()``, ...) find their session.

The model sits below every session in the layering, so it never imports one; a
job's verbs look the session up here at call time: the session that owns the
job's database connection, or (for a job not stored yet) the default session
that a face installed with :func:`set_default` (the GPI installs its client).

It also holds the one answer to "am I inside a write": the writes under way in this
thread (:func:`writing`, opened by ``repository.transactions.write``), which an edit
asks before it commits itself and ``lifecycle.set_status`` reports its changes to.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import GangaLikeError

_sessions_by_db: dict[int, Any] = {}
_default: Any = None


class Write:
    """A write under way in this thread (``repository.transactions.write`` opens one
    around its work): the transaction manager of the connection it writes through,
    whom to tell its status changes once they are committed, and the changes made so
    far (``lifecycle.set_status`` reports each to the innermost write)."""

    def __init__(self, manager: Any, on_commit: Any, parent: Write | None) -> None:
        self.manager = manager
        self.on_commit = on_commit
        self.parent = parent
        self.changes: list[Any] = []  # lifecycle.Change (lifecycle imports this module)
        self.error: BaseException | None = None  # raised by on_commit after the commit

    def through(self, manager: Any) -> Write | None:
        """This write or the nearest enclosing one made through ``manager``."""
        write: Write | None = self
        while write is not None and write.manager is not manager:
            write = write.parent
        return write


# The one record of "am I inside a write": the innermost write of this thread.
_current = threading.local()


@contextmanager
def writing(manager: Any = None, on_commit: Any = None) -> Iterator[Write]:
    """Marks this thread as inside a write through ``manager`` (``None``: no connection,
    e.g. a test collecting status changes): edits made meanwhile join that write's
    transaction instead of committing, and status changes are collected in it."""
    write = Write(manager, on_commit, current_write())
    _current.write = write
    try:
        yield write
    finally:
        _current.write = write.parent


def current_write() -> Write | None:
    """The innermost write under way in this thread, or None."""
    write: Write | None = getattr(_current, "write", None)
    return write


def in_write(manager: Any = None) -> bool:
    """Whether this thread is inside a write (through ``manager``'s connection, if given)."""
    write = current_write()
    if write is None or manager is None:
        return write is not None
    return write.through(manager) is not None


def bind(db: Any, session: Any) -> None:
    _sessions_by_db[id(db)] = session


def unbind(db: Any) -> None:
    _sessions_by_db.pop(id(db), None)


def set_default(session: Any) -> None:
    global _default
    _default = session


def get_default() -> Any:
    """The installed default session, or None (none yet, or it was closed)."""
    if _default is not None and getattr(_default, "closed", False):
        return None
    return _default


def session_for(job: Any) -> Any:
    jar = getattr(job, "_p_jar", None)
    if jar is not None:
        session = _sessions_by_db.get(id(jar.db()))
        if session is not None:
            return session
    session = get_default()
    if session is None:
        raise GangaLikeError(
            "this job is not stored in any repository: create it with ganga_like.gpi's "
            "Job(...) (which stores it), or register it with a session first")
    return session


def apply(obj: Any, change: Any) -> None:
    """Make a user's change to a stored object durable now.

    Inside a write transaction (or for an object not stored yet) the change is
    simply made; otherwise it runs as its own retrying write of the owning session.
    """
    jar = getattr(obj, "_p_jar", None)
    if jar is None or in_write():
        change()
        return
    session = _sessions_by_db.get(id(jar.db()))
    if session is None:
        change()
        return
    session.write(change, note="edit")


def before_read(obj: Any) -> None:
    """Called by status reads: let the owning session show its latest commits."""
    jar = getattr(obj, "_p_jar", None)
    if jar is None or in_write():
        return
    session = _sessions_by_db.get(id(jar.db()))
    if session is not None:
        session.refresh_for_read(jar)
