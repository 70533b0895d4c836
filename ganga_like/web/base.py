"""What every answer of the web view shares: the handlers' base (the gate first, the
security headers, refusals as one line), and the two things pages, JSON and live
streams all do through the service: an action and a peek."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar
from urllib.parse import urlencode

import tornado.web

from ..channel.origin import cleaned
from ..channel.verbs import VERBS, request_args
from ..errors import WebRefused
from ..model.records import outcome_dict
from ..repository.storage import Connection
from . import pages, reads
from .auth import Gate, Request
from .html import layout, notice
from .query import Listing, listing
from .side import ServiceSide

T = TypeVar("T")
ACTION_VERBS = ("kill", "resubmit", "remove")
PEEK_FILES = ("stdout", "stderr")
PEEK_LINES = 40
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
}


class View(Protocol):
    """What the handlers use of the web view (``server.WebView``)."""

    gate: Gate
    side: ServiceSide
    streams: int
    notices: dict[str, tuple[str, bool]]

    async def read(self, work: Callable[[Connection], T]) -> T: ...

    async def ask(self, verb: str, args: Mapping[str, object], origin: str) -> object: ...

    def remember(self, text: str, error: bool = False) -> str: ...


class _Named:
    """A job as the verb table's ``request_args`` names it on the wire (by its fqid)."""

    def __init__(self, fqid: str) -> None:
        self.fqid = fqid


class Base(tornado.web.RequestHandler):
    """Every answer: the gate first, the security headers, refusals as one line."""

    view: View

    def initialize(self, view: View) -> None:
        self.view = view

    def set_default_headers(self) -> None:
        for name, value in HEADERS.items():
            self.set_header(name, value)

    @property
    def is_api(self) -> bool:
        return self.request.path.startswith(("/api/", "/events/"))

    def prepare(self) -> None:
        form = {k: v[-1].decode(errors="replace") for k, v in self.request.body_arguments.items()}
        request = Request(self.request.method or "GET", self.request.host,
                          self.get_query_argument("token", None),
                          {k: m.value for k, m in self.request.cookies.items()},
                          dict(self.request.headers), form)
        if self.view.gate.admit(request) and not self.is_api:
            # Signed in: the token goes into the cookie and out of the address bar.
            self.set_cookie(self.view.gate.cookie, self.view.gate.token, httponly=True,
                            samesite="Strict", path="/")
            rest = {k: v[-1].decode(errors="replace") for k, v in self.request.query_arguments.items()
                    if k != "token"}
            self.redirect(self.request.path + ("?" + urlencode(rest) if rest else ""), status=303)

    def args(self) -> dict[str, str]:
        return {k: v[-1].decode(errors="replace") for k, v in self.request.query_arguments.items()}

    def listing(self) -> Listing:
        return listing(self.args())

    def origin(self) -> str:
        return cleaned(f"the web page, from {self.request.remote_ip}")

    def page(self, title: str, body: str, live_url: str = "") -> None:
        shown = self.view.notices.pop(self.get_query_argument("notice", ""), None)
        self.finish(layout(title, body, self.view.side.root, live_url,
                           notice(shown[0], shown[1]) if shown else ""))

    def json(self, value: object) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(value, ensure_ascii=False, default=str))

    def write_error(self, status_code: int, **kwargs: object) -> None:
        exc_info = kwargs.get("exc_info")
        exc = exc_info[1] if isinstance(exc_info, tuple) else None
        if isinstance(exc, WebRefused):
            self.set_status(int(exc.fields["status"]))
            message = exc.message
        elif isinstance(exc, tornado.web.HTTPError) and exc.status_code == 404:
            message = f"no page at {self.request.path[:80]}; the pages are /, /jobs/ID and /hosts"
        else:
            message = f"the web view failed ({type(exc).__name__}); see the service's log"
        if self.is_api:
            self.json({"error": message})
        else:
            self.finish(layout("error", pages.error_page(self.get_status(), message), self.view.side.root))

    def log_exception(self, typ: object, value: BaseException | None, tb: object) -> None:
        if not isinstance(value, (WebRefused, tornado.web.HTTPError)):
            super().log_exception(typ, value, tb)  # type: ignore[arg-type]


async def peek_text(view: View, fqid: str, file: str, origin: str) -> str:
    """The end of an output file through the ``peek`` verb ('' when there is none yet)."""
    try:
        text = await view.ask("peek", {"fqid": fqid, "file": file, "lines": PEEK_LINES}, origin)
    except WebRefused:
        return ""
    return str(text)


async def act(view: View, fqid: str, verb: str, origin: str) -> dict[str, object]:
    """Kill, resubmit or remove ``fqid`` as ``ganga-like <verb>`` does; its ``--json`` item."""
    await view.read(lambda c: reads.job(c, fqid))  # an unknown id: 404, nothing asked
    wire = request_args(VERBS[verb], {"job": _Named(fqid)})
    await view.ask(verb, wire, origin)
    if verb == "remove":
        return {"fqid": fqid, "removed": True}
    return await view.read(lambda c: outcome_dict(reads.job(c, fqid)))


__all__ = ["ACTION_VERBS", "PEEK_FILES", "Base", "View", "act", "peek_text"]
