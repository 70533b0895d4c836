"""The control socket: clients' requests in, answers out, one thread per connection.

On the unix socket (0600 in a 0700 root) only processes of the service's own
user are answered (checked with ``SO_PEERCRED`` as well). With ``--listen``,
the same requests are taken over TCP wrapped in TLS that requires the client
certificate from the root's secret file: no unauthenticated access.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from ..channel import protocol
from ..channel.paths import connectable
from . import owned

log = logging.getLogger(__name__)

QUEUED_LINGER = 0.1  # seconds a stop still takes the connections queued on its removed socket


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        control = self.server.control
        sock = self.request
        if not control.allowed(sock):
            return
        control.opened()
        try:
            while True:
                try:
                    request = protocol.receive(sock)
                except (protocol.ChannelClosed, OSError, ValueError):
                    return
                control.touch()
                answer = control.answer(request)
                try:
                    protocol.send(sock, answer)
                except OSError:
                    return  # the client went away (Ctrl-C in a wait): nothing to tell
        finally:
            control.closed()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    control: ControlServer


class _TLSServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    control: ControlServer

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        sock.settimeout(10)  # the handshake; a silent peer must not hold a thread
        try:
            wrapped = self.context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.warning("refused a TCP client %s: %s", address, exc)
            sock.close()
            raise OSError("TLS handshake failed") from None
        wrapped.settimeout(None)
        return wrapped, address


class ControlServer:
    def __init__(self, path: str, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.path = path
        self.answer = answer
        self._lock = threading.Lock()
        self.connections = 0
        self.last_activity = time.monotonic()
        self._servers: list[socketserver.BaseServer] = []
        if os.path.exists(path):
            os.unlink(path)  # left by a dead service (we hold the service lock)
        unix = _Server(connectable(path), _Handler)
        os.chmod(path, 0o600)
        self._made = owned.Held(path)  # removed at the stop only while it is this one
        unix.control = self
        self._servers.append(unix)

    def listen_tls(self, host: str, port: int, context: ssl.SSLContext) -> tuple[str, int]:
        server = _TLSServer((host, port), context)
        server.control = self
        self._servers.append(server)
        if self._threads_started:
            self._start(server)
        address = server.server_address
        return str(address[0]), int(address[1])

    _threads_started = False

    def start(self) -> None:
        self._threads_started = True
        for server in self._servers:
            self._start(server)

    def _start(self, server: socketserver.BaseServer) -> None:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="ganga_like-control", daemon=True).start()

    def stop(self) -> None:
        """Stop taking requests, last in a stop (until then they are refused with the
        reason). The socket goes first: a new client finds no service and waits for the
        next. A client that had connected meanwhile is still taken and answered, then the
        listeners close: closed at once, they dropped such a connection unread, and its
        client was told that the service stopped during its verb."""
        self._made.remove()
        if self._threads_started:
            time.sleep(QUEUED_LINGER)
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # -- bookkeeping for the idle rule --------------------------------------------
    def allowed(self, sock: Any) -> bool:
        if sock.family != socket.AF_UNIX:
            return True  # TLS with a client certificate was checked at the handshake
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            log.warning("refused a client of uid %d on the control socket", uid)
            return False
        return True

    def opened(self) -> None:
        with self._lock:
            self.connections += 1
            self.last_activity = time.monotonic()

    def closed(self) -> None:
        with self._lock:
            self.connections -= 1
            self.last_activity = time.monotonic()

    def touch(self) -> None:
        self.last_activity = time.monotonic()
