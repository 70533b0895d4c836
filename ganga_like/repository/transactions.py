"""The unit of work: write transactions that retry on conflicts and report their
status changes.

Only sessions write the database. Every write goes through :func:`write`: it
runs a function inside a write (``model.writes.writing``, the one answer to "am I
inside a write"), commits, retries the whole function on ``ConflictError`` in a
new transaction (the function re-reads what it needs, so a retry sees the other
writer's value), and after a successful commit hands the status changes made
inside to ``on_commit`` (the queue log) from an after-commit hook of that
transaction: a change made in an attempt that was rolled back is never reported.
A commit that finds the disk full is rolled back whole (the FileStorage keeps
nothing of it) and raised as one ``DiskFull`` line.

Only ``ConflictError`` is retried. ``transaction``'s ``attempts()`` retries every
``TransientError``, and ZEO's ``ClientDisconnected`` is one: its retries would each
wait ZEO's ``wait_timeout`` for a server that only the client session starts again
(it retries the write once, after it has). So the loop is ours, on ``transaction``'s
public API only (``begin``, ``get``, ``commit``, ``abort``, after-commit hooks,
``data``/``set_data``).

Whether a connection has changes pending is asked of its current transaction: the
connections ganga_like opens (:class:`Database`) note there, through ZODB's public
``register``/``add`` of the connection, that they have joined it with a changed
object. ZODB keeps its own list private; nothing here reads it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import transaction as _transaction
from ZODB.Connection import Connection as _ZODBConnection
from ZODB.DB import DB as _ZODBDB
from ZODB.POSException import ConflictError

from ..errors import EditConflict
from ..model import writes
from ..model.writes import OnCommit
from .diskspace import database_full, is_disk_full

T = TypeVar("T")
DEFAULT_ATTEMPTS = 8
# Before retry n (1, 2, ...), a random wait of up to RETRY_BASE * 2**(n-1) seconds. Of
# the order of a commit through the database server (a few ms): writers that collide
# (three scripts making jobs at once, each taking the id allocator) spread out, where
# 2 ms let them collide again until the attempts ran out.
RETRY_BASE = 0.01
RETRY_CAP = 0.1  # the longest of those waits: a write with many attempts still goes on


class TrackedConnection(_ZODBConnection):
    """ZODB's connection, which notes on its current transaction when an object of its
    own becomes changed (ZODB calls ``register``; ``add`` stores a new object), so that
    :func:`has_changes` can answer without reading ZODB's private list."""

    def register(self, obj: object) -> None:
        super().register(obj)
        self.transaction_manager.get().set_data(self, True)

    def add(self, obj: object) -> None:
        super().add(obj)
        self.transaction_manager.get().set_data(self, True)


class Database(_ZODBDB):
    """ZODB's database, whose connections are :class:`TrackedConnection` (``klass`` is
    the class ZODB's ``DB.open`` makes them of)."""

    klass = TrackedConnection


def has_changes(connection: _ZODBConnection) -> bool:
    """Whether ``connection`` (a ZODB connection) has changed an object in its current
    transaction: the note :class:`TrackedConnection` leaves on it, gone with the
    transaction once it commits or aborts. A plain ZODB connection is taken as clean."""
    try:
        return bool(connection.transaction_manager.get().data(connection))
    except KeyError:
        return False


def pending(connection: _ZODBConnection) -> bool:
    """Whether ``connection``'s current transaction holds work of its own: changes not
    committed yet, or a write under way through it. A new transaction would drop it."""
    return writes.in_write(connection.transaction_manager) or has_changes(connection)


def write(
    connection: _ZODBConnection,
    work: Callable[[], T],
    attempts: int = DEFAULT_ATTEMPTS,
    on_commit: OnCommit | None = None,
    note: str = "",
) -> T:
    """Run ``work()`` in a transaction on ``connection`` and commit, retrying conflicts.

    Inside a write through the same connection (``work`` of a write calls ``write``
    again), the inner write joins the outer one: its work runs in the outer's
    transaction, which commits, or is retried, as one; its status changes are the
    outer's, reported once that transaction commits (to the outer's ``on_commit``, or
    to this one's if the outer has none)."""
    manager = connection.transaction_manager
    outer = writes.current_write()
    joined = outer.through(manager) if outer is not None else None
    if joined is not None:
        return _join(joined, manager, work, on_commit, note)
    # Edits made before this write (outside any write: a tool's own edits) are pending
    # on the connection: they are committed with it, so the first attempt keeps the
    # transaction that holds them instead of starting from a fresh view.
    kept = has_changes(connection)
    for attempt in range(attempts):
        if attempt:
            time.sleep(random.uniform(0, min(RETRY_CAP, RETRY_BASE * (2 ** (attempt - 1)))))
        try:
            return _attempt(connection, work, on_commit, note, fresh=bool(attempt) or not kept)
        except ConflictError as exc:
            if kept and attempt == 0:
                # Edits made before this write cannot be replayed: say so, never drop
                # them silently. (Through the GPI edits are committed as they are made.)
                raise EditConflict(str(exc)) from None
            if attempt + 1 >= attempts:
                raise
            _catch_up(connection)
    raise AssertionError("unreachable")  # pragma: no cover


def _catch_up(connection: _ZODBConnection) -> None:
    """Before a retry: wait until this client has had the database server's news of the
    commit it conflicted with. A ZEO client gets it on a thread of its own, and a new
    transaction begun before it came would read the old value again and conflict again
    (eight scripts making jobs at once ran out of attempts so). A round trip to the
    server is enough: it sends the news before it answers. (The service's own
    connections read its FileStorage: nothing to wait for.)"""
    ping = getattr(connection.db().storage, "ping", None)
    if ping is not None:
        ping()


def _attempt(connection: _ZODBConnection, work: Callable[[], T], on_commit: OnCommit | None,
             note: str, fresh: bool) -> T:
    """One try: ``work()`` and the commit, in a new transaction (``fresh``) or in the one
    holding the connection's pending edits; aborted on any error (a full disk as one line)."""
    manager = connection.transaction_manager
    txn = manager.begin() if fresh else manager.get()
    if note:
        txn.note(note)
    committing = False
    try:
        with writes.writing(manager, on_commit) as unit:
            result = work()
        txn = manager.get()
        txn.addAfterCommitHook(_committed, (unit,))
        committing = True
        txn.commit()
    except BaseException as exc:
        manager.abort()
        if committing and is_disk_full(exc):
            what = f"nothing of '{note}' was written" if note else "nothing of it was written"
            raise database_full(connection.db(), what, "run it again") from None
        raise
    if unit.error is not None:
        raise unit.error  # on_commit failed; the transaction is committed
    return result


def _join(outer: writes.Write, manager: _transaction.TransactionManager, work: Callable[[], T],
          on_commit: OnCommit | None, note: str) -> T:
    """A write inside a write through the same connection: part of the outer one."""
    with writes.writing(manager, on_commit) as unit:
        result = work()
    outer.changes.extend(unit.changes)
    if outer.on_commit is None:
        outer.on_commit = on_commit
    if note:
        manager.get().note(note)
    return result


def _committed(status: bool, unit: writes.Write) -> None:
    """The after-commit hook of a write's transaction: ``status`` is whether it committed.
    What ``on_commit`` raises is raised by ``write`` once the commit is over
    (``transaction`` would only log it)."""
    if status and unit.changes and unit.on_commit is not None:
        try:
            unit.on_commit(unit.changes)
        except BaseException as exc:  # noqa: BLE001 - raised again by write()
            unit.error = exc


def new_transaction_manager() -> _transaction.TransactionManager:
    """A transaction manager for one connection used by one thread."""
    return _transaction.TransactionManager(explicit=False)
