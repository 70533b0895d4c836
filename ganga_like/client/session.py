"""ClientSession: a face's session. Reads and edits go through its own ZEO
connection to the service; verbs go to the service on its control socket.

Reads never import Ray. Every verb that touches running work (submit, kill,
resubmit, remove, force_status, freeze, unmonitor, leaks) is carried out by the
service, with the same strict-mode rules whoever asks; ``wait`` and ``peek`` are
answered there too (the service knows when postprocessing is done, and a remote
client cannot see the workspace). Each request carries the last transaction the
client has seen, and the client waits for the service's answer's transaction
before it returns, so a client always reads its own verbs' results.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from ZEO.Exceptions import ClientDisconnected
from ZODB.utils import p64, u64

from ..channel.paths import ServicePaths, connectable
from ..config import Config
from ..errors import ServiceUnavailable, WaitTimeout
from ..model.job import Job
from ..repository.storage import open_zeo
from ..status import Status
from ..store_session import StoreSession
from . import autostart, remote
from .link import Link, NoService

WAIT_SLICE = 30.0  # a wait is asked in slices, so an interrupted client leaves no long waiter
CATCH_UP = 10.0
RECONNECT = 30.0  # ZEO retries its connection every few seconds at most


class ClientSession(StoreSession):
    def __init__(self, config: Config | None = None, autostart_service: bool = True,
                 quiet: bool = False) -> None:
        config = config or Config.from_env()
        target = remote.target_from_env()
        self.paths: ServicePaths | None = None
        if target is not None:
            self.link, info, address, context = remote.connect(config, target)
            repository = open_zeo(config, address, ssl=context, location=f"{target[0]}:{target[1]}")
        else:
            paths = self.paths = ServicePaths(config.root)
            info = autostart.connect(paths, autostart=autostart_service, quiet=quiet)
            self.link = Link(config.root, unix_path=paths.control_socket)
            repository = open_zeo(config, connectable(paths.zeo_socket), location=config.root)
        self.service = info
        super().__init__(config, repository)

    # -- the service may have gone away while this client stayed open ------------------
    def _ensure_connected(self, force: bool = False) -> None:
        """Before a write or a verb: if the database connection is down (the service
        stopped or died), start the next service and wait until ZEO reconnects."""
        storage = self.repository.db.storage
        if self.paths is None or (storage.is_connected() and not force):
            return
        autostart.connect(self.paths)
        deadline = time.monotonic() + RECONNECT
        while not storage.is_connected():
            if time.monotonic() > deadline:
                raise ServiceUnavailable(self.paths.root, "its database did not come back "
                                         f"within {RECONNECT:g} s", log=self.paths.log)
            time.sleep(0.02)

    def write(self, work: Any, note: str = "") -> Any:
        self._ensure_connected()
        try:
            return super().write(work, note=note)
        except ClientDisconnected:
            # The service went away after the check above (ZEO notices a lost server
            # only when it next uses the connection): start the next one, once.
            if self.paths is None:
                raise ServiceUnavailable(self.link.root, "its database connection was lost") from None
            self._ensure_connected(force=True)
            return super().write(work, note=note)

    def refresh(self) -> None:
        if self.paths is not None and not self.repository.db.storage.is_connected():
            self._ensure_connected()
        super().refresh()

    # -- the request and its consistency ------------------------------------------
    def _seen_tid(self) -> str:
        return "%016x" % u64(self.repository.db.lastTransaction())

    def _catch_up(self, tid: str) -> None:
        if tid:
            wanted = p64(int(tid, 16))
            storage = self.repository.db.storage
            deadline = time.monotonic() + CATCH_UP
            while storage.lastTransaction() < wanted and time.monotonic() < deadline:
                time.sleep(0.0005)
        self.refresh()

    def call(self, verb: str, **args: Any) -> Any:
        try:
            value, tid = self.link.call(verb, self._seen_tid(), **args)
        except NoService:
            # The service stopped (idle, `service stop`, a crash) while this client stayed
            # open: start the next one, as a first use would; the ZEO connection follows.
            if self.paths is None:
                raise ServiceUnavailable(self.link.root, "it does not answer") from None
            autostart.connect(self.paths)
            self._ensure_connected()
            value, tid = self.link.call(verb, self._seen_tid(), **args)
        self._catch_up(tid)
        return value

    # -- verbs: carried out by the service ------------------------------------------
    def submit(self, job: Job, keep_going: bool = False) -> Job:
        self.register(job)
        self.call("submit", fqid=job.fqid, keep_going=keep_going, environment=dict(os.environ))
        return job

    def kill(self, job: Job) -> None:
        self.call("kill", fqid=job.fqid)

    def resubmit(self, job: Job, force: bool = False, include_killed: bool = False) -> None:
        self.call("resubmit", fqid=job.fqid, force=force, include_killed=include_killed)

    def remove(self, job: Job, force: bool = False) -> None:
        self.call("remove", fqid=job.fqid, force=force)

    def force_status(self, job: Job, status: str, force: bool = False) -> None:
        self.call("force_status", fqid=job.fqid, status=str(getattr(status, "value", status)),
                  force=force)

    def freeze(self, job: Job) -> None:
        self.call("freeze", fqid=job.fqid)

    def unfreeze(self, job: Job) -> None:
        self.call("unfreeze", fqid=job.fqid)

    def unmonitor(self, job: Job) -> None:
        self.call("unmonitor", fqid=job.fqid)

    def leaks(self, reap: bool = False) -> list[dict[str, Any]]:
        return self.call("leaks", reap=reap)

    def peek(self, job: Job, file: str = "stdout", lines: int = 20) -> str:
        return self.call("peek", fqid=job.fqid, file=file, lines=lines)

    def wait(self, jobs: Iterable[Job], timeout: float | None = None,
             poll: float | None = None) -> list[Status]:
        """Block until every job is final (and its postprocessing done)."""
        fqids = [j.fqid for j in jobs]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                statuses = self.call("wait", fqids=fqids, timeout=min(left, WAIT_SLICE))
                return [Status(s) for s in statuses]
            except WaitTimeout as exc:
                if timeout is not None and deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(timeout, list(exc.fields.get("pending", ()))) from None

    def ensure_monitor(self) -> None:
        """The service's monitor always runs; nothing to start here."""
