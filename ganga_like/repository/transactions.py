"""Write transactions that retry on conflicts and report their status changes.

Only sessions write the database. Every write goes through :func:`write`: it
runs a function, commits, retries the whole function on ``ConflictError`` (the
function re-reads what it needs, so a retry sees the other writer's value), and
after a successful commit hands the status changes made inside to
``on_commit`` (the queue log). A change made in an attempt that was rolled back
is never reported. A commit that finds the disk full is rolled back whole (the
FileStorage keeps nothing of it) and raised as one ``DiskFull`` line.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import transaction as _transaction
from ZODB.POSException import ConflictError

from ..errors import EditConflict
from ..model import binding
from ..model.lifecycle import Change, collect_changes
from .diskspace import database_full, is_disk_full

T = TypeVar("T")
DEFAULT_ATTEMPTS = 8


def write(
    connection: Any,
    work: Callable[[], T],
    attempts: int = DEFAULT_ATTEMPTS,
    on_commit: Callable[[list[Change]], None] | None = None,
    note: str = "",
) -> T:
    """Run ``work()`` in a transaction on ``connection`` and commit, retrying conflicts."""
    manager = connection.transaction_manager
    pending = bool(getattr(connection, "_registered_objects", None))
    for attempt in range(attempts):
        # Start from a fresh view (fewer conflicts) unless edits are pending in
        # this thread: those belong to this write and must not be thrown away.
        if attempt or not getattr(connection, "_registered_objects", None):
            manager.begin()
        committing = False
        try:
            with binding.writing(), collect_changes() as changes:
                result = work()
            txn = manager.get()
            if note:
                txn.note(note)
            committing = True
            manager.commit()
        except ConflictError as exc:
            manager.abort()
            if pending and attempt == 0:
                # Edits made before this write cannot be replayed: say so, never drop
                # them silently. (Through the GPI edits are committed as they are made.)
                raise EditConflict(str(exc)) from None
            if attempt + 1 >= attempts:
                raise
            time.sleep(random.uniform(0, 0.002 * (2**attempt)))
            continue
        except BaseException as exc:
            manager.abort()
            if committing and is_disk_full(exc):
                what = f"nothing of '{note}' was written" if note else "nothing of it was written"
                raise database_full(connection.db(), what, "run it again") from None
            raise
        if on_commit is not None and changes:
            on_commit(changes)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def new_transaction_manager() -> _transaction.TransactionManager:
    """A transaction manager for one connection used by one thread."""
    return _transaction.TransactionManager(explicit=False)
