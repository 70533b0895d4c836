"""What the web view needs of the service it runs in (``service.webhost.WebHost``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..repository.storage import Connection


class ServiceSide(Protocol):
    """What the web view needs of the service it runs in."""

    @property
    def root(self) -> str: ...

    @property
    def queue_log(self) -> str: ...

    def connect(self) -> Connection:
        """A connection of its own to the service's database (closed by the caller)."""
        ...

    def last_transaction(self) -> bytes:
        """The database's last transaction id, read without a connection (cheap)."""
        ...

    def ask(self, verb: str, args: Mapping[str, object], origin: str) -> Mapping[str, object]:
        """A verb of the table, as a client's request is answered: ``{"ok": True, "value":
        ...}`` or ``{"ok": False, "error": {"type", "message", "fields"}}``."""
        ...


__all__ = ["ServiceSide"]
