"""The web view's addresses and what answers each (Tornado request handlers).

Pages: ``/`` (jobs), ``/jobs/3`` (a job or subjob), ``/jobs/3/why``,
``/jobs/3/configuration`` (as ``print(j)``), ``/jobs/3/kill``
(``resubmit``, ``remove``: a confirmation on GET, the action on POST), ``/hosts``.
JSON, in ``--json``'s shapes: ``/api/jobs``, ``/api/jobs/3``, ``/api/jobs/3/subjobs``,
``/api/jobs/3/why``, ``/api/jobs/3/peek``, and POST ``/api/jobs/3/kill`` (...). Live
updates: ``/events/jobs`` and ``/events/jobs/3`` (server-sent events). Every request
passes the gate (``auth``) first; every refusal is one line (HTML or JSON).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar
from urllib.parse import urlencode

import tornado.iostream
import tornado.web

from ..channel.origin import cleaned
from ..channel.verbs import VERBS, request_args
from ..errors import WebRefused
from ..model.records import detail_dict, outcome_dict
from ..repository.storage import Connection
from . import live, pages, reads
from .auth import Gate, Request
from .html import layout, notice
from .query import Listing, listing
from .side import ServiceSide

T = TypeVar("T")
access = logging.getLogger("ganga_like.web.access")
ACTION_VERBS = ("kill", "resubmit", "remove")
PEEK_FILES = ("stdout", "stderr")
PEEK_LINES = 40
LIVE_STEP = 0.5  # how often a live stream looks at the database's last transaction
LIVE_MIN = 1.0  # the least time between two reads of one stream
HEARTBEAT = 15.0  # a comment line this often tells a stream whether its page went away
STATIC_FILES = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
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


# --- pages ---------------------------------------------------------------------------------------


class JobsPage(Base):
    async def get(self) -> None:
        q = self.listing()
        page = await self.view.read(lambda c: reads.jobs_page(c, q))
        ids = [str(r["fqid"]) for r in page.rows]
        newest = ids[0] if ids and q.before is None and not q.filtered else ""
        live_url = "/events/jobs?" + urlencode({"rows": ",".join(ids), "newest": newest})
        body = '<p id="jobs-newer"></p>' + pages.jobs_list(page, q)
        self.page("Jobs", body, live_url)


class JobPage(Base):
    async def get(self, fqid: str) -> None:
        q = self.listing()

        def work(conn: Connection) -> tuple[reads.Row, reads.Page | None]:
            found = reads.job(conn, fqid)
            subs = reads.subjobs_page(found, q) if found._subjobs is not None else None
            return reads.detail(found), subs

        data, subjobs = await self.view.read(work)
        peeks = {} if subjobs is not None else await self._peeks(str(data["fqid"]))
        log_lines = await asyncio.get_running_loop().run_in_executor(
            None, reads.queue_log_lines, self.view.side.queue_log, str(data["fqid"]))
        shown = ",".join(str(r["id"]) for r in (subjobs.rows if subjobs else []))
        live_url = f"/events/jobs/{data['fqid']}?" + urlencode({"rows": shown})
        self.page(f"Job {data['fqid']}", pages.job_page(data, subjobs, q, log_lines, peeks),
                  live_url)

    async def _peeks(self, fqid: str) -> dict[str, str]:
        return {name: await peek_text(self.view, fqid, name, self.origin()) for name in PEEK_FILES}


async def peek_text(view: View, fqid: str, file: str, origin: str) -> str:
    """The end of an output file through the ``peek`` verb ('' when there is none yet)."""
    try:
        text = await view.ask("peek", {"fqid": fqid, "file": file, "lines": PEEK_LINES}, origin)
    except WebRefused:
        return ""
    return str(text)


class ConfigurationPage(Base):
    async def get(self, fqid: str) -> None:
        tree = await self.view.read(lambda c: str(reads.job(c, fqid)))
        self.page(f"Configuration of {fqid}", pages.configuration_page(fqid, tree))


class WhyPage(Base):
    async def get(self, fqid: str) -> None:
        report = await self.view.read(lambda c: reads.job(c, fqid).why().as_dict())
        if self.is_api:
            self.json(report)
        else:
            self.page(f"Why {fqid}", pages.why_page(report))


class ActionPage(Base):
    """GET: what the action will do, and the button; POST: do it, through the service."""

    async def get(self, fqid: str, verb: str) -> None:
        data = await self.view.read(lambda c: reads.detail(reads.job(c, fqid)))
        self.page(f"{verb} {fqid}", pages.confirm_page(str(data["fqid"]), verb, data,
                                                       self.view.gate.csrf))

    async def post(self, fqid: str, verb: str) -> None:
        target = "/" if verb == "remove" else f"/jobs/{fqid}"
        try:
            outcome = await act(self.view, fqid, verb, self.origin())
            key = self.view.remember(_said(verb, outcome))
        except WebRefused as exc:
            if exc.fields["status"] == 404:
                raise
            key = self.view.remember(f"{verb} {fqid}: {exc.fields['problem']}", error=True)
        self.redirect(f"{target}?notice={key}", status=303)


async def act(view: View, fqid: str, verb: str, origin: str) -> dict[str, object]:
    """Kill, resubmit or remove ``fqid`` as ``ganga-like <verb>`` does; its ``--json`` item."""
    await view.read(lambda c: reads.job(c, fqid))  # an unknown id: 404, nothing asked
    wire = request_args(VERBS[verb], {"job": _Named(fqid)})
    await view.ask(verb, wire, origin)
    if verb == "remove":
        return {"fqid": fqid, "removed": True}
    return await view.read(lambda c: outcome_dict(reads.job(c, fqid)))


def _said(verb: str, outcome: Mapping[str, object]) -> str:
    if outcome.get("removed"):
        return f"{outcome['fqid']}: removed"
    return f"{verb} {outcome['fqid']}: now {outcome['status']}"


class HostsPage(Base):
    async def get(self) -> None:
        hosts, refusal = None, ""
        if "hosts" in VERBS:  # the Hosts backend's listing, once the service has it
            try:
                value = await self.view.ask("hosts", {}, self.origin())
                hosts = value if isinstance(value, list) else None
            except WebRefused as exc:
                refusal = str(exc.fields["problem"])
        self.page("Hosts", pages.hosts_page(hosts, refusal))


class Static(Base):
    def get(self, name: str) -> None:
        if name not in STATIC_FILES:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", STATIC_FILES[name])
        with open(os.path.join(os.path.dirname(__file__), "static", name), "rb") as handle:
            self.finish(handle.read())


class NotFound(Base):
    def get(self) -> None:
        raise tornado.web.HTTPError(404)

    post = get


# --- JSON ------------------------------------------------------------------------------------------


class JobsApi(Base):
    async def get(self) -> None:
        q = self.listing()
        page = await self.view.read(lambda c: reads.jobs_page(c, q))
        _link_next(self, "before", page.next_cursor)
        self.json(page.rows)  # jobs --json's list


class JobApi(Base):
    async def get(self, fqid: str) -> None:
        self.json(await self.view.read(lambda c: detail_dict(reads.job(c, fqid))))


class SubjobsApi(Base):
    async def get(self, fqid: str) -> None:
        q = self.listing()
        page = await self.view.read(lambda c: reads.subjobs_page(reads.job(c, fqid), q))
        _link_next(self, "after", page.next_cursor)
        self.json([{k: v for k, v in row.items() if k != "id"} for row in page.rows])


class PeekApi(Base):
    async def get(self, fqid: str) -> None:
        args = self.args()
        lines = args.get("lines", "20")
        if not lines.isdigit() or not 1 <= int(lines) <= 10000:
            raise WebRefused(400, f"lines={lines[:20]!r} is not valid", "give 1 to 10000")
        wire = {"fqid": fqid, "file": args.get("file", "stdout"), "lines": int(lines)}
        text = await self.view.ask("peek", wire, self.origin())
        self.json({"fqid": fqid, "file": wire["file"], "lines": wire["lines"], "text": text})


class ActionApi(Base):
    async def post(self, fqid: str, verb: str) -> None:
        self.json(await act(self.view, fqid, verb, self.origin()))


def _link_next(handler: Base, cursor: str, value: int | None) -> None:
    if value is not None:
        rest = {**handler.args(), cursor: str(value)}
        handler.set_header("Link", f'<{handler.request.path}?{urlencode(rest)}>; rel="next"')


# --- live ------------------------------------------------------------------------------------------


class Events(Base):
    """One page's live updates: ``data: {element id: HTML}`` whenever a shown piece changed."""

    _gone = False

    def on_connection_close(self) -> None:
        self._gone = True

    async def get(self, fqid: str | None = None) -> None:
        rows = self.get_query_argument("rows", "").split(",")[: live.MAX_ROWS]
        newest = self.get_query_argument("newest", "")
        self.set_header("Content-Type", "text/event-stream")
        self.view.streams += 1
        sent: dict[str, str] = {}
        serials: dict[str, bytes] = {}  # of the shown subjobs' records, as last sent
        seen: bytes | None = None
        last_read = last_write = 0.0
        try:
            while not self._gone:
                now = time.monotonic()
                tid = self.view.side.last_transaction()
                if tid != seen and now - last_read >= LIVE_MIN:
                    seen, last_read = tid, now
                    try:
                        pieces = await self._pieces(fqid, rows, newest, sent, serials)
                    except WebRefused as exc:  # removed meanwhile: say so, and end the stream
                        self.write(f"event: gone\ndata: {exc.fields['problem']}\n\n")
                        await self.flush()
                        return
                    changed = {k: v for k, v in pieces.items() if sent.get(k) != v}
                    if changed:
                        sent.update(changed)
                        self.write(f"data: {json.dumps(changed, ensure_ascii=False)}\n\n")
                        await self.flush()
                        last_write = now
                if now - last_write >= HEARTBEAT:
                    self.write(": still here\n\n")
                    await self.flush()
                    last_write = now
                await asyncio.sleep(LIVE_STEP)
        except tornado.iostream.StreamClosedError:
            pass
        finally:
            self.view.streams -= 1

    async def _pieces(self, fqid: str | None, rows: list[str], newest: str,
                      sent: Mapping[str, str], serials: dict[str, bytes]) -> live.Pieces:
        if fqid is None:
            below = int(newest) if newest.isdigit() else None
            return await self.view.read(lambda c: live.jobs_pieces(c, rows, below))
        pieces, leaf_active = await self.view.read(lambda c: live.job_pieces(c, fqid, rows, serials))
        status = f"status-{fqid}"
        if leaf_active or (status in sent and sent[status] != pieces.get(status)):
            # A leaf that runs, or has just ended: the end of its output too.
            for name in PEEK_FILES:
                text = await peek_text(self.view, fqid, name, self.origin())
                pieces[f"peek-{fqid}-{name}"] = pages.peek_block(fqid, name, text)
        return pieces


def application(view: View) -> tornado.web.Application:
    job = r"([0-9]{1,12}(?:\.[0-9]{1,12})?)"
    actions = "(" + "|".join(ACTION_VERBS) + ")"
    where = {"view": view}
    return tornado.web.Application([
        (r"/", JobsPage, where),
        (rf"/jobs/{job}", JobPage, where),
        (rf"/jobs/{job}/why", WhyPage, where),
        (rf"/jobs/{job}/configuration", ConfigurationPage, where),
        (rf"/jobs/{job}/{actions}", ActionPage, where),
        (r"/hosts", HostsPage, where),
        (r"/static/([a-z.]+)", Static, where),
        (r"/api/jobs", JobsApi, where),
        (rf"/api/jobs/{job}", JobApi, where),
        (rf"/api/jobs/{job}/subjobs", SubjobsApi, where),
        (rf"/api/jobs/{job}/why", WhyPage, where),
        (rf"/api/jobs/{job}/peek", PeekApi, where),
        (rf"/api/jobs/{job}/{actions}", ActionApi, where),
        (r"/events/jobs", Events, where),
        (rf"/events/jobs/{job}", Events, where),
        (r".*", NotFound, where),
    ], xsrf_cookies=False, compress_response=True, log_function=_log_request)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """One debug line per request, without its query: a first visit's address holds the token."""
    request = handler.request
    access.debug("%d %s %s %.1f ms", handler.get_status(), request.method, request.path,
                 1000 * request.request_time())


__all__ = ["View", "application"]
