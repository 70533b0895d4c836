"""The handlers of the pages: the jobs list, a job, its configuration, why, an action's
confirmation and the action, the hosts; the static files; no page elsewhere."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from urllib.parse import urlencode

import tornado.web

from ..channel.verbs import VERBS
from ..errors import WebRefused
from ..repository.storage import Connection
from . import pages, reads
from .base import PEEK_FILES, Base, act, peek_text

STATIC_FILES = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}


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


def _said(verb: str, outcome: Mapping[str, object]) -> str:
    if outcome.get("removed"):
        return f"{outcome['fqid']}: removed"
    return f"{verb} {outcome['fqid']}: now {outcome['status']}"


__all__ = ["ActionPage", "ConfigurationPage", "HostsPage", "JobPage", "JobsPage", "NotFound",
           "Static", "WhyPage"]
