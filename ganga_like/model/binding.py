"""How a Job's verbs (``j.submit()``, ``j.kill()``, ...) find their session.

The model sits below every session in the layering, so it never imports one; a
job's verbs look the session up here at call time: the session that owns the
job's database connection, or (for a job not stored yet) the default session
that a face installed with :func:`set_default` (the GPI installs its client).

An edit of a stored object commits itself through that session, unless it is made
inside a write (``writes.in_write``: the one answer), which it then joins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import GangaLikeError
from .new_objects import Snapshot
from .session import JobSession
from .writes import in_write

J = TypeVar("J")
_sessions_by_db: dict[int, JobSession[Any]] = {}
_default: JobSession[Any] | None = None


def bind(db: Any, session: object) -> None:
    if not isinstance(session, JobSession):  # (StoreSession binds itself: its subclasses are)
        raise TypeError(f"{type(session).__name__} does not implement JobSession")
    _sessions_by_db[id(db)] = session


def unbind(db: Any) -> None:
    _sessions_by_db.pop(id(db), None)


def set_default(session: JobSession[Any] | None) -> None:
    global _default
    _default = session


def get_default() -> JobSession[Any] | None:
    """The installed default session, or None (none yet, or it was closed)."""
    if _default is not None and getattr(_default, "closed", False):
        return None
    return _default


def session_for(job: J) -> JobSession[J]:
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


def apply(obj: Any, change: Callable[[], None], value: object = None) -> None:
    """Make a user's change to a stored object durable now.

    Inside a write transaction (or for an object not stored yet) the change is
    simply made; otherwise it runs as its own retrying write of the owning session.
    ``value`` is what the change assigns: the new persistent objects in it are made
    new again before each attempt (``new_objects``: a failed attempt may leave them
    unfit to be stored).
    """
    jar = getattr(obj, "_p_jar", None)
    if jar is None or in_write():
        change()
        return
    session = _sessions_by_db.get(id(jar.db()))
    if session is None:
        change()
        return
    snapshot = Snapshot(value)

    def attempt() -> None:
        snapshot.restore()
        change()

    session.write(attempt, note="edit")


def before_read(obj: Any) -> None:
    """Called by status reads: let the owning session show its latest commits."""
    jar = getattr(obj, "_p_jar", None)
    if jar is None or in_write():
        return
    session = _sessions_by_db.get(id(jar.db()))
    if session is not None:
        session.refresh_for_read(jar)
