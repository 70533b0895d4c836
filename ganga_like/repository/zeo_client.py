"""The ZEO client storage of a face's session: a read cut off by a lost server is
tried again once the session has it back.

ZEO notices that its server went away (the service stopped, or was killed) only when
it next uses the connection. A write or a verb then starts the next service
(``client.session``). A read did not: a ghost loaded while the user iterated ``jobs``
or read an attribute raised ZEO's ``ClientDisconnected``, a traceback in the middle of
the user's script. Here such a read calls ``lost`` (the session's: start the next
service and wait until ZEO is connected to it, or raise its one line) and is tried
once more. The new service serves the same FileStorage, so the connection's snapshot
still reads the same state.

A new server also hands out object ids afresh: a FileStorage opened again counts from
the highest id committed, so the ids this client had taken from the old server but not
used yet may go to another client too. They are dropped at every connection (a new
object stored under one of them failed with "A different object already has the same
oid", or conflicted with the other client's object).

A remote client cannot start the next service: its read raises the one line that says
so. ZODB logs every load that fails (but a conflict) with its traceback before it
raises the error again; that copy of one of ours is dropped (``_TOLD_IN_ONE_LINE``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ZEO.ClientStorage import ClientStorage
from ZEO.Exceptions import ClientDisconnected

from ..errors import GangaLikeError


class _ToldInOneLine(logging.Filter):
    """Drops ZODB's log of a failed load whose error is ours: the face tells it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, GangaLikeError)


_TOLD_IN_ONE_LINE = _ToldInOneLine()


class SessionClientStorage(ClientStorage):
    """``ClientStorage`` whose reads survive the loss of their server once.

    ``lost``: called (on the reading thread) when a read finds the server gone; it
    returns once the storage is connected again, or raises why it cannot be. None: the
    read raises ``ClientDisconnected``, as ZEO's own storage does."""

    lost: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        logging.getLogger("ZODB.Connection").addFilter(_TOLD_IN_ONE_LINE)  # (once: a set)
        super().__init__(*args, **kwargs)

    def notify_connected(self, conn: Any, info: dict[str, Any]) -> None:
        self._oids: list[bytes] = []  # ZEO's ids taken from the previous server, not used yet
        super().notify_connected(conn, info)

    def loadBefore(self, oid: bytes, tid: bytes) -> Any:  # noqa: N802 (ZODB's storage API)
        try:
            return super().loadBefore(oid, tid)
        except ClientDisconnected:
            if self.lost is None:
                raise
            self.lost()
        return super().loadBefore(oid, tid)
