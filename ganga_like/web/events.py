"""A live page's stream (server-sent events): ``data: {element id: HTML}`` whenever a
piece the page shows changed; ``event: gone`` when what it shows was removed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping

import tornado.iostream

from ..errors import WebRefused
from . import live, pages
from .base import PEEK_FILES, Base, peek_text

LIVE_STEP = 0.5  # how often a live stream looks at the database's last transaction
LIVE_MIN = 1.0  # the least time between two reads of one stream
HEARTBEAT = 15.0  # a comment line this often tells a stream whether its page went away


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


__all__ = ["HEARTBEAT", "LIVE_MIN", "LIVE_STEP", "Events"]
