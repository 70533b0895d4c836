"""Finding the root's service, and starting one in the background when none runs.

The service holds ``<root>/service.lock`` (flock) for its whole life, so "a
service runs" is a lock held, whether or not it answers yet. Clients that find
none take ``<root>/service.starting`` while they start one, so two clients
racing start one service, and both then connect to it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from typing import Any

from ..channel.paths import ServicePaths
from ..errors import ServiceLost, ServiceStopping, ServiceUnavailable
from .link import Link, NoService

SERVICE_PREFIX = "ganga-like service: "  # how the service's one-line reasons begin in its log
START_TIMEOUT = 180.0  # a cold machine: import Ray, start it, recover a large repository
POLL = 0.05
RESTARTS = 3  # services this client started that were stopped or killed before they answered it
ANNOUNCE_AFTER = 1.0  # a start that answers sooner needs no line (one already starting, say)


def service_alive(paths: ServicePaths) -> bool:
    """Whether a service holds the root's lock (it may still be starting)."""
    try:
        fd = os.open(paths.lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock we may just have taken
    return False


def hello(link: Link) -> dict[str, Any] | None:
    """The service's description once it is ready, or None if none answers."""
    try:
        value, _ = link.call("hello")
    except (NoService, ServiceLost, ServiceStopping):
        return None
    # A stopping one is going away (it refuses verbs): the next one will answer.
    return None if value.get("stopping") else value


def connect(paths: ServicePaths, autostart: bool = True, quiet: bool = False) -> dict[str, Any]:
    """Hello from the root's service, starting it first if needed and allowed. A start
    that answers within ANNOUNCE_AFTER seconds says nothing; a longer one says so once
    (the wait is mostly inside one hello, which the service answers once it is ready)."""
    link = Link(paths.root, unix_path=paths.control_socket)
    deadline = time.monotonic() + START_TIMEOUT
    started: subprocess.Popen | None = None
    ended_before_answering = 0
    announce = threading.Timer(ANNOUNCE_AFTER, print, (
        f"ganga-like: starting the service for {paths.root} (a few seconds) ...",),
        {"file": sys.stderr, "flush": True})
    announce.daemon = True
    try:
        while True:
            info = hello(link)
            if info is not None:
                return info
            if not service_alive(paths):
                if started is not None and started.poll() is not None:
                    # Exit 0: it was stopped (`service stop`) before it answered this
                    # client; a signal: it was killed (an OOM kill, an admin). Neither is a
                    # start that failed: another start. A failed start says why (exit 1).
                    if started.returncode > 0 or ended_before_answering == RESTARTS:
                        raise could_not_start(paths, started.returncode)
                    ended_before_answering += 1
                    started = None
                if not autostart:
                    raise ServiceUnavailable(paths.root, "no service runs")
                if started is None or started.poll() is not None:
                    started = _start_once(paths)
            if not quiet and not announce.is_alive() and not announce.finished.is_set():
                announce.start()
            if time.monotonic() > deadline:
                raise ServiceUnavailable(paths.root, f"it did not answer within {START_TIMEOUT:g} s",
                                         log=paths.log)
            time.sleep(POLL)
    finally:
        announce.cancel()


def _start_once(paths: ServicePaths) -> subprocess.Popen | None:
    """Start a service unless another client is doing it or did it meanwhile."""
    paths.make_root()
    fd = os.open(paths.start_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if service_alive(paths):
            return None
        proc = spawn(paths)
        # Hold the start lock until the new service holds its own lock (or died), so
        # a second client does not start another in between.
        deadline = time.monotonic() + 30
        while not service_alive(paths) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc
    finally:
        os.close(fd)


def spawn(paths: ServicePaths, listen: str = "", ray_open: bool = False) -> subprocess.Popen:
    """The service as a background process in its own session, its output in its log."""
    log_fd = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        command = [sys.executable, "-m", "ganga_like.service.main", "--root", paths.root]
        if listen:
            command += ["--listen", listen]
        env = {k: v for k, v in os.environ.items() if k != "GANGA_LIKE_MARKER"}
        if ray_open:
            env["GANGA_LIKE_RAY_OPEN"] = "1"
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd,
                                start_new_session=True, close_fds=True, env=env, cwd=paths.root)
    finally:
        os.close(log_fd)
    # Reap it when it exits, so a long-lived client keeps no zombie.
    threading.Thread(target=proc.wait, name="ganga_like-service-reaper", daemon=True).start()
    return proc


def could_not_start(paths: ServicePaths, returncode: int) -> ServiceUnavailable:
    """The error for a service that exited while starting: its own one-line reason."""
    return ServiceUnavailable(paths.root, f"it could not start (exit code {returncode})"
                              + last_log_line(paths.log), log=paths.log)


def last_log_line(path: str) -> str:
    """': <the log's last line>' to end a message with, or '' if there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 2000))
            lines = [l for l in handle.read().decode(errors="replace").splitlines() if l.strip()]
        return f": {lines[-1].strip().removeprefix(SERVICE_PREFIX)[:600]}" if lines else ""
    except OSError:
        return ""
