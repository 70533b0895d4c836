"""The write under way in this thread: the one answer to "am I inside a write".

``repository.transactions.write`` opens a :class:`Write` around its work
(:func:`writing`). Everything that must know whether it runs inside one asks here:
an edit of a stored object (made plainly inside a write, committed on its own
outside: ``binding.apply``), a refused stored field (``component``), a status read
(which refreshes only outside), and ``lifecycle.set_status``, which reports each
:class:`Change` to the innermost write, to be told once its transaction commits.

A write also carries the current :class:`~ganga_like.status.Cause` (the verb, monitor
batch, recovery, ... it is part of): ``acting_as(cause)`` names it for what this thread
does meanwhile, a write opened inside takes it (a nested write, its outer write's), and
``set_status`` stamps it on each history entry and queue-log line without its callers
passing it. The engine names causes (``EngineContext.new_cause``: numbered in the
repository, see docs/architecture.md, "Cause ids").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ..status import Cause


class Change(NamedTuple):
    """A status change, as reported to the queue log."""

    time: float
    fqid: str
    source: str
    target: str
    note: str
    host: str
    cause: Cause | None = None


OnCommit = Callable[[list[Change]], None]


class Write:
    """A write under way: the transaction manager of the connection it writes through
    (``None``: no connection, e.g. a test collecting status changes), whom to tell its
    status changes once they are committed, and the changes made so far."""

    def __init__(self, manager: object | None, on_commit: OnCommit | None,
                 parent: Write | None, cause: Cause | None = None) -> None:
        self.manager = manager
        self.on_commit = on_commit
        self.parent = parent
        self.cause = cause  # what it is part of
        self.changes: list[Change] = []
        self.error: BaseException | None = None  # what on_commit raised after the commit

    def through(self, manager: object) -> Write | None:
        """This write or the nearest enclosing one made through ``manager``."""
        write: Write | None = self
        while write is not None and write.manager is not manager:
            write = write.parent
        return write


_current = threading.local()  # .write: the innermost write of this thread


@contextmanager
def writing(manager: object | None = None, on_commit: OnCommit | None = None,
            cause: Cause | None = None) -> Iterator[Write]:
    """Marks this thread as inside a write through ``manager``'s connection: edits made
    meanwhile join that write's transaction instead of committing, and status changes
    are collected in it, stamped with ``cause`` (by default the enclosing one's)."""
    # Named for it, else what the thread acts as (inside a write: that write's cause).
    write = Write(manager, on_commit, current_write(), cause or _acting())
    _current.write = write
    with acting_as(write.cause):
        try:
            yield write
        finally:
            _current.write = write.parent


def current_write() -> Write | None:
    """The innermost write under way in this thread, or None."""
    write: Write | None = getattr(_current, "write", None)
    return write


def in_write(manager: object | None = None) -> bool:
    """Whether this thread is inside a write (through ``manager``'s connection, if given)."""
    write = current_write()
    if write is None or manager is None:
        return write is not None
    return write.through(manager) is not None


# -- causes ------------------------------------------------------------------------------

def _acting() -> Cause | None:
    cause: Cause | None = getattr(_current, "cause", None)
    return cause


@contextmanager
def acting_as(cause: Cause | None) -> Iterator[Cause | None]:
    """What this thread does meanwhile is part of ``cause`` (None: keeps the current one):
    the writes it opens, and the status changes they make, carry it."""
    before = _acting()
    _current.cause = cause or before
    try:
        yield _current.cause
    finally:
        _current.cause = before


def current_cause() -> Cause | None:
    """The cause this thread acts as: its innermost write's, or the one ``acting_as``
    named outside any write."""
    return _acting()
