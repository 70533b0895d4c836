"""The leak ledger: what a forced removal or a relaxed kill may have left running.

Every entry keeps the backend handle, so ``leaks()`` can later ask the backend
whether it still holds anything and reap it. Entries are never deleted, only
marked resolved, so an administrator can see what happened.
"""

from __future__ import annotations

import time
from typing import Any

from persistent import Persistent


class LeakRecord(Persistent):
    time: float = 0.0
    fqid: str = ""
    backend: str = ""
    handle: tuple | None = None
    reason: str = ""
    resolved: str = ""  # why it is no longer a leak (gone, reaped), with the time

    def __init__(self, fqid: str, backend: str, handle: tuple | None, reason: str) -> None:
        self.time = time.time()
        self.fqid = fqid
        self.backend = backend
        self.handle = handle
        self.reason = reason

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time, "fqid": self.fqid, "backend": self.backend,
                "handle": self.handle, "reason": self.reason, "resolved": self.resolved}


class Ledger:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def record(self, job: Any, reason: str) -> LeakRecord:
        """Add an entry (inside the caller's transaction)."""
        root = self.connection.root
        top = job.master or job
        entry = LeakRecord(job.fqid, type(top.backend).__name__, job.handle, reason)
        root.leaks[root.ids.take("leak")] = entry
        return entry

    def open_entries(self) -> list[LeakRecord]:
        return [e for e in self.connection.root.leaks.values() if not e.resolved]

    def all(self) -> list[LeakRecord]:
        return list(self.connection.root.leaks.values())
