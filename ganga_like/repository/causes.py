"""Short numbers for causes (``kill #41``), unique within a repository.

A cause (``status.Cause``) is numbered when it is made, by the process that writes the
repository: the service, or a session holding the FileStorage's lock. Taking each
number in the repository would put one counter in every verb's and every monitor
batch's transaction, and those run at once by design: they would conflict there. So the
numbers come in blocks, as a database sequence with a cache hands them out: a block of
:data:`BLOCK` is reserved in the root's ``IdAllocator`` by one small transaction of its
own, then handed out from memory. A process that stops cleanly gives back the unused end
of its block, if nobody reserved after it; a crash leaves a gap, never a repeat.
"""

from __future__ import annotations

import threading

from ZODB.Connection import Connection
from ZODB.DB import DB

from .root import ROOT_KEY, IdAllocator, RepositoryRoot
from .transactions import new_transaction_manager, write

BLOCK = 50
KIND = "cause"  # the IdAllocator's counter (``next_cause``)


class CauseNumbers:
    """Hands out cause numbers for one open database, from blocks reserved in it."""

    def __init__(self, db: DB) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._next = 0
        self._end = 0  # the block is [_next, _end)

    def take(self) -> int:
        """The next number (the first call, and each BLOCK-th, reserves a block)."""
        with self._lock:
            if self._next >= self._end:
                self._next = self._reserve()
                self._end = self._next + BLOCK
            number = self._next
            self._next += 1
            return number

    def give_back(self) -> None:
        """Return the unused end of the block, if it is still the last one reserved: the
        next process goes on from here instead of from the end of the block."""
        with self._lock:
            if self._next >= self._end:
                return
            used, end = self._next, self._end

            def shrink() -> None:
                ids = _allocator(conn)
                if ids.next_cause == end:
                    ids.next_cause = used

            self._next = self._end = 0
            conn = self._db.open(transaction_manager=new_transaction_manager())
            try:
                write(conn, shrink, note="give back unused cause numbers")
            finally:
                conn.close()

    def _reserve(self) -> int:
        conn = self._db.open(transaction_manager=new_transaction_manager())
        try:
            return write(conn, lambda: _allocator(conn).take_block(KIND, BLOCK),
                         note="reserve cause numbers")
        finally:
            conn.close()


def _allocator(conn: Connection) -> IdAllocator:
    """The root's IdAllocator, seen through ``conn`` (a plain ZODB connection)."""
    zroot = conn.root()
    if ROOT_KEY not in zroot:  # a repository nothing was stored in yet
        zroot[ROOT_KEY] = RepositoryRoot()
    ids = zroot[ROOT_KEY].ids
    assert isinstance(ids, IdAllocator), ids
    return ids
