"""The write under way in this thread: the one answer to "am I inside a write".

``repository.transactions.write`` opens a :class:`Write` around its work
(:func:`writing`). Everything that must know whether it runs inside one asks here:
an edit of a stored object (made plainly inside a write, committed on its own
outside: ``binding.apply``), a refused stored field (``component``), a status read
(which refreshes only outside), and ``lifecycle.set_status``, which reports each
:class:`Change` to the innermost write, to be told once its transaction commits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple


class Change(NamedTuple):
    """A status change, as reported to the queue log."""

    time: float
    fqid: str
    source: str
    target: str
    note: str
    host: str


OnCommit = Callable[[list[Change]], None]


class Write:
    """A write under way: the transaction manager of the connection it writes through
    (``None``: no connection, e.g. a test collecting status changes), whom to tell its
    status changes once they are committed, and the changes made so far."""

    def __init__(self, manager: object | None, on_commit: OnCommit | None,
                 parent: Write | None) -> None:
        self.manager = manager
        self.on_commit = on_commit
        self.parent = parent
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
def writing(manager: object | None = None, on_commit: OnCommit | None = None) -> Iterator[Write]:
    """Marks this thread as inside a write through ``manager``'s connection: edits made
    meanwhile join that write's transaction instead of committing, and status changes
    are collected in it."""
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


def in_write(manager: object | None = None) -> bool:
    """Whether this thread is inside a write (through ``manager``'s connection, if given)."""
    write = current_write()
    if write is None or manager is None:
        return write is not None
    return write.through(manager) is not None
