"""The actor's side of the native launcher (``launcher.c``): wrappers spawned for it.

A Local actor that spawns each wrapper itself waits in ``posix_spawn`` until the
wrapper has exec'd, holding the GIL, about a third of its watcher's time in a burst of
short subjobs (docs/performance.md, "Session 20"). The launcher, a small static
process started once per actor, does the spawn instead: the actor sends a request and
goes on, and reads the answer (the wrapper's pid, or why it could not be made) when its
watcher next wakes. The wrapper is made with ``CLONE_PARENT``: it is the actor's own
child, reaped by the actor as before.

:class:`Launcher` only carries requests and answers; what a run does meanwhile is the
actor's (``local/actor.py``). ``send`` returns None whenever the request cannot go now
(the launcher's queue is full, the request is too large, the launcher is gone): the
caller then spawns the wrapper itself, so nothing ever waits on the launcher.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from typing import NamedTuple

REQUEST = struct.Struct("=QIIII")  # id, flags, argc, envc, size: launcher.c's struct request
REPLY = struct.Struct("=Qiiqq")  # id, pid, error, before_ns, after_ns: its struct reply
FOLLOWER = 1
MAX_REQUEST = 192 * 1024  # below the socket's send buffer (about 208 KiB by default)
CLOSE_WAIT = 2.0  # seconds close() waits for the launcher to end before it kills it


class Environment(NamedTuple):
    """An environment encoded once for many requests (``NAME=value`` NUL-terminated)."""

    data: bytes
    variables: int  # how many


def encode_environment(env: dict[str, str]) -> Environment:
    """``env`` as requests carry it. ValueError: a NUL in a name or value, or a name
    empty or holding ``=`` (as ``posix_spawn`` refuses them)."""
    strings = []
    for name, value in env.items():
        key = os.fsencode(name)
        if b"=" in key or not key:
            raise ValueError(f"illegal environment variable name: {name!r}")
        strings.append(key + b"=" + os.fsencode(value) + b"\0")
    data = b"".join(strings)
    if data.count(0) != len(strings):
        raise ValueError("embedded null byte")
    return Environment(data, len(strings))


class Launched(NamedTuple):
    """The launcher's answer to one request."""

    id: int
    pid: int  # the wrapper (our child); 0 if it was not made
    error: int  # errno of what failed (0: it runs); a made wrapper that failed is a zombie to reap
    before_ns: int  # CLOCK_BOOTTIME around its clone: its start time (procs.spawned_start_time)
    after_ns: int


class Launcher:
    """A running launcher and the actor's end of its socket (see the module doc)."""

    def __init__(self, path: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            try:
                actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
                actions.append((os.POSIX_SPAWN_DUP2, theirs.fileno(), 3))
                self.pid = os.posix_spawn(path, [path], {"PATH": "/usr/bin:/bin"}, file_actions=actions)
            finally:
                os.close(devnull)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.path = path
        self._socket = ours
        self._next = 0

    def fileno(self) -> int:
        return self._socket.fileno()

    def send(self, argv: list[str], env: Environment, more: dict[str, str],
             fds: tuple[int, ...] = ()) -> int | None:
        """Ask for a wrapper ``argv`` with ``env`` and ``more`` (names not in ``env``;
        a follower: ``fds`` are its fd 3 and 4); the request's id, or None when it cannot
        be sent now. ValueError: as :func:`encode_environment`, or a NUL in an argument."""
        args = b"".join(os.fsencode(arg) + b"\0" for arg in argv)
        if args.count(0) != len(argv):
            raise ValueError("embedded null byte")
        extra = encode_environment(more)
        size = len(args) + len(env.data) + len(extra.data)
        if size > MAX_REQUEST:
            return None
        self._next += 1
        variables = env.variables + extra.variables
        head = REQUEST.pack(self._next, FOLLOWER if fds else 0, len(argv), variables, size)
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
        try:
            self._socket.sendmsg([head, args, env.data, extra.data], rights)
        except (BlockingIOError, OSError):
            return None  # full, or gone: the caller spawns it (the watcher sees a loss)
        return self._next

    def answers(self) -> list[Launched] | None:
        """The answers waiting now, in order; None once the launcher is gone."""
        found: list[Launched] = []
        while True:
            try:
                data = self._socket.recv(REPLY.size)
            except BlockingIOError:
                return found
            except OSError:
                return None if not found else found
            if not data:
                return None if not found else found
            if len(data) == REPLY.size:
                found.append(Launched(*REPLY.unpack(data)))

    def close(self, kill: bool = False) -> None:
        """End the launcher (its end of the socket closes: it exits; ``kill``: at once,
        whatever it is doing) and reap it."""
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._socket.close()
        deadline = time.monotonic() + CLOSE_WAIT
        while True:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                return
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                return
            time.sleep(0.005)
