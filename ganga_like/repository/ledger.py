"""The leak ledger: what a forced removal or a relaxed kill may have left running.

Every entry keeps the backend handle and the backend configuration that made it
(a detached copy of the job's backend: the pool's key comes from it), so
``leaks()`` can later ask *that* backend's actor whether it still holds anything
and reap it there. Entries are never deleted, only marked resolved, so an
administrator can see what happened.

Records written before the configuration was kept load with ``backend_config``
None; the audit then takes the backend the handle names (``handle[0]``), or
``backend``, with its default settings.
"""

from __future__ import annotations

import time
from typing import Any

from persistent import Persistent


class LeakRecord(Persistent):
    time: float = 0.0
    fqid: str = ""
    backend: str = ""  # the backend's class name, e.g. "RayCluster"
    handle: tuple | None = None
    reason: str = ""
    resolved: str = ""  # why it is no longer a leak (gone, reaped), with the time
    # A detached copy of the job's backend config (a BackendConfig): the pool picks the
    # actor from it (``actor_key()``). None in records written before it was kept.
    backend_config: Any = None

    def __init__(self, fqid: str, backend: str, handle: tuple | None, reason: str,
                 backend_config: Any = None) -> None:
        self.time = time.time()
        self.fqid = fqid
        self.backend = backend
        self.handle = handle
        self.reason = reason
        self.backend_config = backend_config

    def backend_name(self) -> str:
        """The backend that made the handle: the handle's own word, else ``backend``."""
        if self.backend_config is not None:
            return type(self.backend_config).__name__
        named = self.handle[0] if self.handle else ""
        return named if named and named != "?" else self.backend


class Ledger:
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._configs: dict[int, Any] = {}  # one stored copy of a job's backend per Ledger

    def record(self, job: Any, reason: str, handle: tuple | None = None) -> LeakRecord:
        """Add an entry (inside the caller's transaction). ``handle`` (default: the
        job's) is what its backend is later asked about; the backend is the top-level
        job's, whose config chose the actor that made the handle."""
        root = self.connection.root
        top = job.master or job
        config = top.backend
        copy = None
        if config is not None:
            copy = self._configs.get(id(top))
            if copy is None:
                copy = self._configs[id(top)] = config.copy()
        entry = LeakRecord(job.fqid, type(config).__name__ if config is not None else "",
                           handle if handle is not None else job.handle, reason, backend_config=copy)
        root.leaks[root.ids.take("leak")] = entry
        return entry

    def open_entries(self) -> list[LeakRecord]:
        return [e for e in self.connection.root.leaks.values() if not e.resolved]
