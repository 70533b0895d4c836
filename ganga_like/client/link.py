"""One request to the service and its answer, over the control socket.

A connection per request: requests may come from several threads of a client
at once, and a unix-socket connect costs microseconds. If the service goes away
in the middle of a request the caller gets ``ServiceLost`` (one line), never a
hang; if nothing answers at all, ``NoService``, which the caller may resolve by
starting one.
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import Any

from ..channel import protocol
from ..channel.origin import this_process
from ..channel.paths import connectable
from ..errors import ServiceLost


class NoService(Exception):
    """Nothing answers on the control socket (no service, or a dead one's socket)."""


class Link:
    def __init__(self, root: str, unix_path: str = "",
                 tcp: tuple[str, int] | None = None, context: ssl.SSLContext | None = None) -> None:
        self.root = root
        self.unix_path = unix_path
        self.tcp = tcp
        self.context = context

    def _connect(self) -> socket.socket:
        try:
            if self.tcp is not None:
                raw = socket.create_connection(self.tcp, timeout=10)
                assert self.context is not None
                wrapped = self.context.wrap_socket(raw)
                wrapped.settimeout(None)
                return wrapped
            if not os.path.exists(self.unix_path):  # (a root not yet made has no socket)
                raise NoService(f"no socket at {self.unix_path}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(connectable(self.unix_path))
            except BaseException:
                sock.close()
                raise
            return sock
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError) as exc:
            raise NoService(str(exc)) from None
        except ssl.SSLError as exc:
            raise NoService(f"the service refused this client's secret ({exc.reason})") from None

    def call(self, verb: str, tid: str = "", **args: Any) -> tuple[Any, str]:
        """Send one request; return (value, the service's last transaction id)."""
        with self._connect() as sock:
            try:
                protocol.send(sock, {"verb": verb, "args": args, "tid": tid,
                                     "from": this_process(remote=self.tcp is not None)})
                answer = protocol.receive(sock)
            except (protocol.ChannelClosed, ConnectionResetError, BrokenPipeError):
                raise ServiceLost(self.root, verb) from None
        if not answer.get("ok"):
            raise protocol.decode_error(answer.get("error") or {})
        return answer.get("value"), str(answer.get("tid") or "")
