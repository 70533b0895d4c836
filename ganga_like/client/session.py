"""ClientSession: a face's session. Reads and edits go through its own ZEO
connection to the service; verbs go to the service on its control socket.

Reads never import Ray. Every verb of the table (``model.session.JobSession``:
submit, kill, resubmit, remove, force_status, freeze, unfreeze, unmonitor, leaks) is
carried out by the service, with the same strict-mode rules whoever asks; ``wait``
and ``peek`` are answered there too (the service knows when postprocessing is done,
and a remote client cannot see the workspace). The session inherits the verbs; each
goes through :meth:`ClientSession.run_verb`, the one generic call. Each request
carries the last transaction the client has seen, and the client waits for the
service's answer's transaction before it returns, so a client always reads its own
verbs' results (``channel.verbs``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

from ZEO.Exceptions import ClientDisconnected

from ..channel.paths import ServicePaths, connectable
from ..channel.verbs import VERBS, catch_up, request_args, returned, seen_tid
from ..config import Config
from ..errors import ServiceLost, ServiceStopping, ServiceUnavailable, WaitTimeout
from ..model.job import Job
from ..model.session import JobSession, check_args
from ..repository.storage import open_zeo
from ..repository.transactions import DEFAULT_ATTEMPTS
from ..status import RayState
from ..store_session import StoreSession
from . import autostart, remote
from .link import Link, NoService

WAIT_SLICE = 30.0  # a long verb (wait) is asked in slices: an interrupted client leaves no long waiter
RECONNECT = 30.0  # ZEO retries its connection every few seconds at most
STOPPING_ASKS = 5  # services met stopping or gone, one after the other, before a client gives up


class ClientSession(StoreSession, JobSession[Job]):
    def __init__(self, config: Config | None = None, autostart_service: bool = True,
                 quiet: bool = False) -> None:
        config = config or Config.from_env()
        target = remote.target_from_env()
        self.paths: ServicePaths | None = None
        if target is not None:
            self.link, info, address, context = remote.connect(config, target)
            repository = open_zeo(config, address, ssl=context, location=f"{target[0]}:{target[1]}",
                                  read_only=config.read_only)
        else:
            paths = self.paths = ServicePaths(config.root)
            info = autostart.connect(paths, autostart=autostart_service, quiet=quiet)
            self.link = Link(config.root, unix_path=paths.control_socket)
            repository = open_zeo(config, connectable(paths.zeo_socket), location=config.root,
                                  read_only=config.read_only)
        self.service = info
        super().__init__(config, repository)
        repository.db.storage.lost = self._connection_lost  # reads (repository.zeo_client)

    # -- the service may have gone away while this client stayed open ------------------
    def _connection_lost(self) -> None:
        """A read or a write found the database server gone (ZEO notices a lost server
        only when it next uses the connection): start the next service and wait for the
        connection, so that it can be tried again; a remote client cannot."""
        if self.paths is None:
            raise ServiceUnavailable(self.link.root, "its database connection was lost")
        self._ensure_connected(force=True)

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
            if not autostart.service_alive(self.paths):
                # The one found was stopped before ZEO reached it (seen with stops in a row:
                # every client waited here for a server no one started): the next one.
                autostart.connect(self.paths)
            time.sleep(0.02)

    def write(self, work: Any, note: str = "", attempts: int = DEFAULT_ATTEMPTS) -> Any:
        self._ensure_connected()
        try:
            return super().write(work, note=note, attempts=attempts)
        except ClientDisconnected:
            pass  # the service went away after the check above: once more, on the next one
        self._connection_lost()
        return super().write(work, note=note, attempts=attempts)

    def refresh(self) -> None:
        if self.paths is not None and not self.repository.db.storage.is_connected():
            self._ensure_connected()
        super().refresh()

    # -- the one generic call ------------------------------------------------------------
    def run_verb(self, name: str, /, **args: object) -> Any:
        """Ask the service for one verb of the table and return its result as the table
        says (the engine's own ``run_verb`` returns the same shapes in-process)."""
        verb = VERBS[name]
        check_args(verb, args)  # one line here, before anything is sent
        self.check_verb(verb)
        job = args.get("job")
        if verb.stores_job and isinstance(job, Job):
            self.register(job)  # a new job needs its id before the wire can name it
        wire = request_args(verb, args)
        if verb.monitor:
            self._say_if_ray_starts(name)
        value = self._asked_in_slices(name, wire) if verb.long else self.request(name, wire)
        return returned(verb, value, args)

    def _say_if_ray_starts(self, name: str) -> None:
        """A verb that needs the backends waits while the service's Ray starts: say so
        once, on a terminal (the service said ``ray: starting`` when this client came)."""
        if self.service.get("ray") != RayState.STARTING.value or not sys.stderr.isatty():
            return
        self.service = {**self.service, "ray": "asked"}  # once per client
        print(f"ganga-like: {name} waits for the service's Ray to start (a few seconds, once "
              f"per service) ...", file=sys.stderr, flush=True)

    def _asked_in_slices(self, name: str, wire: Mapping[str, object]) -> object:
        """A long verb: its ``timeout`` is the caller's whole wait, asked WAIT_SLICE s at a time."""
        timeout = wire.get("timeout")
        assert timeout is None or isinstance(timeout, (int, float)), timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return self.request(name, {**wire, "timeout": min(left, WAIT_SLICE)})
            except WaitTimeout as exc:
                if timeout is not None and deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(timeout, list(exc.fields.get("pending", ()))) from None

    def request(self, name: str, wire: Mapping[str, object]) -> object:
        """One request, read-your-writes: it carries the last transaction seen here, and
        returns once this client's view has the answer's."""
        for asked in range(1, STOPPING_ASKS + 1):
            try:
                value, tid = self._call(name, wire)
                break
            except (ServiceStopping, ServiceLost) as exc:
                # Refused by a stopping service before it did anything (or a read it ended
                # early), or a wait or a peek cut off by a lost one: asked of the next
                # service, once that one is gone (asked at once, a lost one's socket could
                # still take the request, and drop it). A verb that changes jobs, cut off,
                # may have gone through: its one line says so.
                again = isinstance(exc, ServiceStopping) or VERBS[name].reads_only
                if self.paths is None or not again or asked == STOPPING_ASKS:
                    raise
                self._connection_lost()
        catch_up(self.repository.db, tid)
        self.refresh()
        return value

    def _call(self, name: str, wire: Mapping[str, object]) -> tuple[Any, str]:
        for asked in range(1, STOPPING_ASKS + 1):
            try:
                return self.link.call(name, seen_tid(self.repository.db), **wire)
            except NoService:
                # The service stopped (idle, `service stop`, a crash) while this client
                # stayed open: start the next one, as a first use would; the ZEO
                # connection follows. (The next one may be stopped too before it answers.)
                if self.paths is None or asked == STOPPING_ASKS:
                    break
                self._connection_lost()
        raise ServiceUnavailable(self.link.root, "it does not answer")

    def ensure_monitor(self) -> None:
        """The service's monitor always runs; nothing to start here."""
