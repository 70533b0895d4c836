"""The JSON handlers: the same data as the pages, in ``--json``'s shapes."""

from __future__ import annotations

from urllib.parse import urlencode

from ..errors import WebRefused
from ..model.records import detail_dict
from . import reads
from .base import Base, act


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


__all__ = ["ActionApi", "JobApi", "JobsApi", "PeekApi", "SubjobsApi"]
