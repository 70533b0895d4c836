"""The control channel's wire format: length-prefixed JSON, one request, one answer.

A request is ``{"verb": str, "args": {...}, "tid": hex, "from": str}``; ``from`` says
who asks (``channel.origin``: the causes of what the verb changes name it); ``tid`` is the last
transaction the client has committed or seen, and the service reads the
database at least that new before it acts (a client's own writes are always
visible to the verb it asks for). An answer is ``{"ok": true, "value": ...,
"tid": hex}`` (the client waits until its own view has that transaction before
it returns) or ``{"ok": false, "error": {"type", "message", "fields"}}``, which
the client raises again as the same class of :mod:`ganga_like.errors`.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from .. import errors

HEADER = struct.Struct(">I")
MAX_MESSAGE = 64 * 1024 * 1024  # a submit carries an environment; a listing may be large


class ChannelClosed(EOFError):
    """The other end went away in the middle of a message."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, default=_plain).encode()
    sock.sendall(HEADER.pack(len(data)) + data)


def receive(sock: socket.socket) -> dict[str, Any]:
    size = HEADER.unpack(_exactly(sock, HEADER.size))[0]
    if size > MAX_MESSAGE:
        raise ChannelClosed(f"message of {size} bytes is larger than the {MAX_MESSAGE} allowed")
    return json.loads(_exactly(sock, size))


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ChannelClosed("the connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value  # str enums (Status)
    return repr(value)


def encode_error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, errors.GangaLikeError):
        fields = {k: v for k, v in exc.fields.items()}
        return {"type": type(exc).__name__, "message": exc.message,
                "fields": json.loads(json.dumps(fields, default=_plain))}
    first = (str(exc).splitlines() or [""])[0][:500]
    return {"type": type(exc).__name__, "message": f"{type(exc).__name__}: {first}", "fields": {}}


def decode_error(data: dict[str, Any]) -> errors.GangaLikeError:
    """The service's error as the same class here (or ``ServiceError`` if unknown)."""
    cls = getattr(errors, str(data.get("type", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.GangaLikeError)):
        cls = errors.ServiceError
    exc = cls.__new__(cls)
    message = str(data.get("message", ""))
    fields = dict(data.get("fields") or {})
    Exception.__init__(exc, message)
    exc.message = message
    exc.fields = fields
    for key, value in fields.items():
        setattr(exc, key, value)
    return exc
