"""The web view's HTTP server: Tornado, on an event loop of its own in one thread of the
service, beside ZEO's server and Ray.

The loop only parses requests and writes answers: every read of the database runs on
a small pool of threads (``READERS``), each on a connection of its own taken from the
database's pool and closed after the read, and every action is asked of the service as
a client's request is (``ServiceSide.ask``: the same verb table, lock, strict-mode
rules and cause, with the web page as who asked). Live pages follow one event stream
each (server-sent events, ``events.Events``): the stream looks at the database's last
transaction every ``LIVE_STEP`` seconds and reads again only when it moved, at most
once per ``LIVE_MIN`` seconds, sending only the pieces that changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from ..errors import WebRefused
from ..repository.storage import Connection
from . import routes
from .auth import Gate, host_name, new_token
from .side import ServiceSide

log = logging.getLogger("ganga_like.web")

READERS = 4  # threads that read the database (and wait on actions) for the loop

T = TypeVar("T")


class WebView:
    """The server, started once per service (``start``) and stopped with it."""

    def __init__(self, side: ServiceSide, host: str = "127.0.0.1", port: int = 0) -> None:
        import tornado.netutil

        self.side = side
        self.host = host
        self.sockets = tornado.netutil.bind_sockets(port, host)  # a port taken fails here, now
        self.port = int(self.sockets[0].getsockname()[1])
        self.loopback = host_name(host) in ("127.0.0.1", "localhost", "::1")
        self.gate = Gate(new_token(), self.port, loopback=self.loopback)
        self.pool = concurrent.futures.ThreadPoolExecutor(READERS, thread_name_prefix="ganga_like-web")
        self.streams = 0  # open live pages: the service counts them as clients
        self.notices: dict[str, tuple[str, bool]] = {}  # what an action did, shown after its redirect
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address to open: the first visit's, with the token (on every interface:
        this machine's name, which another machine can reach)."""
        shown = socket.gethostname() if self.host in ("", "0.0.0.0", "::") else self.host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/?token={self.gate.token}"

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="ganga_like-web",
                                        daemon=True)
        self._thread.start()
        ready.wait(10)
        log.info("web view on http://%s:%d/ (token in `ganga-like web`)", self.host, self.port)

    def _serve(self, ready: threading.Event) -> None:
        import tornado.httpserver

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        server = tornado.httpserver.HTTPServer(routes.application(self), xheaders=False)
        server.add_sockets(self.sockets)
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.stop()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self.pool.shutdown(wait=False, cancel_futures=True)
        for sock in self.sockets:
            sock.close()

    # -- what the handlers use (base.View) --------------------------------------------------
    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` on a reader thread, on a connection of its own."""
        def run() -> T:
            conn = self.side.connect()
            try:
                return work(conn)
            finally:
                conn.close()

        return await asyncio.get_running_loop().run_in_executor(self.pool, run)

    async def ask(self, verb: str, args: Mapping[str, object], origin: str) -> object:
        """A verb of the table, through the service; its refusal raised as ``WebRefused``."""
        answer = await asyncio.get_running_loop().run_in_executor(
            self.pool, self.side.ask, verb, args, origin)
        if not answer.get("ok"):
            error = answer.get("error")
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            kind = str(error.get("type", "")) if isinstance(error, dict) else ""
            status = {"JobNotFound": 404, "InvalidValue": 400}.get(kind, 409)
            raise WebRefused(status, message, "nothing was changed by the web view")
        return answer.get("value")

    def remember(self, text: str, error: bool = False) -> str:
        """Keep what an action did for the page it redirects to; the key to show it."""
        key = os.urandom(6).hex()
        self.notices[key] = (text, error)
        while len(self.notices) > 100:
            self.notices.pop(next(iter(self.notices)))
        return key


__all__ = ["WebView"]
