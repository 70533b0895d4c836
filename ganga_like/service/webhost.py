"""The service's side of the web view: started on the first ``ganga-like web``, stopped
with the service.

The web view reads through connections of its own to the service's database and asks
for every action as a client's request is answered (``Service.answer``: the verb
table, the write lock, strict mode, the cause naming "the web page"), so nothing the
page does bypasses what the command line goes through. It listens on loopback unless
``ganga-like web --listen HOST:PORT`` says otherwise, at the first start; the address
cannot change while the service runs (its token would then serve two places).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import GangaLikeError
from ..repository.storage import Connection, Repository

if TYPE_CHECKING:
    from ..web.server import WebView

Answer = Callable[[dict[str, object]], Mapping[str, object]]
LOOPBACK = ("127.0.0.1", 0)


class WebHost:
    """What ``web.side.ServiceSide`` asks of the service, and the one web view it runs."""

    def __init__(self, config: Config, repository: Repository, answer: Answer) -> None:
        self.root = config.root  # (web.side.ServiceSide's)
        self.queue_log = config.queue_log
        self.repository = repository
        self._answer = answer
        self._lock = threading.Lock()
        self.view: WebView | None = None

    # -- web.side.ServiceSide --------------------------------------------------------------
    def connect(self) -> Connection:
        return self.repository.connect()

    def last_transaction(self) -> bytes:
        return bytes(self.repository.db.storage.lastTransaction())

    def ask(self, verb: str, args: Mapping[str, object], origin: str) -> Mapping[str, object]:
        return self._answer({"verb": verb, "args": dict(args), "from": origin})

    # -- the service's use ------------------------------------------------------------------
    def open(self, listen: str = "") -> Mapping[str, object]:
        """The web view's address (started now if it is not yet): the ``web`` verb."""
        host, port = parse_web_listen(listen) if listen else LOOPBACK
        with self._lock:
            if self.view is None:
                from ..web.server import WebView  # (Tornado: imported by the first ask only)

                self.view = WebView(self, host, port)
                self.view.start()
            elif listen and (host, port) not in ((self.view.host, self.view.port), (self.view.host, 0)):
                raise GangaLikeError(
                    f"the web view already serves on {self.view.host}:{self.view.port}; "
                    f"--listen {listen} takes effect after `ganga-like service stop`")
            view = self.view
        return {"url": view.url, "host": view.host, "port": view.port, "loopback": view.loopback}

    @property
    def address(self) -> str:
        """Where the view serves, without its token ('' before its first start)."""
        view = self.view
        return view.url.split("?", 1)[0] if view is not None else ""

    @property
    def streams(self) -> int:
        """Open live pages (the idle rule counts each as a client)."""
        return self.view.streams if self.view is not None else 0

    def stop(self) -> None:
        with self._lock:
            if self.view is not None:
                self.view.stop()
                self.view = None


def parse_web_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise GangaLikeError(f"--listen {value!r} is not valid; give HOST:PORT (e.g. "
                             f"127.0.0.1:8080, or 0.0.0.0:8080 for every interface)")
    return host, int(port)


__all__ = ["WebHost", "parse_web_listen"]
