"""``ganga-like service start | stop | status | log``: the service as a user sees it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from ..channel.paths import ServicePaths
from ..errors import ServiceLost, ServiceRunning, ServiceStopping, ServiceUnavailable
from ..status import RayState
from . import autostart
from .link import Link, NoService

STOP_TIMEOUT = 60.0
NOT_RUNNING = 3  # exit code of `status` when no service runs


def start(paths: ServicePaths, listen: str = "", ray_open: bool = False) -> dict[str, Any]:
    """Start the root's service and return its status; one that runs already is the
    answer, as ``systemctl start`` has it (``already_running``), unless it cannot do
    what this start asks (a TCP listener, an open Ray): then one line says so."""
    if autostart.service_alive(paths):
        return _running_as_asked(paths, listen, ray_open)
    paths.make_root()
    proc = autostart.spawn(paths, listen=listen, ray_open=ray_open)
    deadline = time.monotonic() + autostart.START_TIMEOUT
    link = Link(paths.root, unix_path=paths.control_socket)
    while time.monotonic() < deadline:
        info = autostart.hello(link)
        if info is not None:
            return info
        if proc.poll() is not None:
            raise autostart.could_not_start(paths, proc.returncode)
        time.sleep(autostart.POLL)
    raise ServiceUnavailable(paths.root, "it did not answer in time", log=paths.log)


def _running_as_asked(paths: ServicePaths, listen: str, ray_open: bool) -> dict[str, Any]:
    info = status(paths) or {"root": paths.root, "pid": paths.holder_pid()}
    missing = [what for what, asked, has in (
        (f"--listen {listen}", listen, info.get("listen")),
        ("--ray-open", ray_open, info.get("ray_open"))) if asked and not has]
    if missing:
        raise ServiceRunning(paths.root, f"pid {info.get('pid')}, without {' and '.join(missing)}")
    return {**info, "already_running": True}


def stop(paths: ServicePaths, timeout: float = STOP_TIMEOUT) -> dict[str, Any]:
    """Stop the root's service; ``{"root", "stopped": whether one ran, "pid"}``."""
    if not autostart.service_alive(paths):
        return {"root": paths.root, "stopped": False, "pid": None}
    pid = paths.holder_pid()
    try:
        Link(paths.root, unix_path=paths.control_socket).call("stop")
    except ServiceStopping:
        pass  # stopping already: it goes by itself
    except (NoService, ServiceUnavailable, ServiceLost, OSError):
        if pid:  # starting, stopping, or not answering: the signal does the same
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while autostart.service_alive(paths):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(paths.root, f"it did not stop within {timeout:g} s "
                                     f"(pid {pid}; `kill {pid}` ends it)", log=paths.log)
        time.sleep(0.05)
    return {"root": paths.root, "stopped": True, "pid": pid}


def describe_stop(result: dict[str, Any]) -> str:
    if not result["stopped"]:
        return f"no service runs for {result['root']}"
    return f"stopped the service for {result['root']} (pid {result['pid']})"


def status(paths: ServicePaths) -> dict[str, Any] | None:
    if not autostart.service_alive(paths):
        return None
    try:
        value, _ = Link(paths.root, unix_path=paths.control_socket).call("status")
        return value
    except NoService:
        return {"root": paths.root, "pid": paths.holder_pid(), "ready": False,
                "starting": True}
    except ServiceStopping:
        return {"root": paths.root, "pid": paths.holder_pid(), "ready": False,
                "stopping": True}


def ray_line(info: Mapping[str, object]) -> str:
    """The state of the service's Ray, as a person reads it."""
    state = info.get("ray") or ""
    if state == RayState.FAILED.value:
        return f"could not start ({info.get('ray_error')}); reads and edits still work"
    if state == RayState.STARTING.value or not info.get("ray_address"):
        return "starting (reads and edits do not wait for it; submit and kill do)"
    return str(info["ray_address"])


def describe(info: dict[str, Any]) -> str:
    if info.get("starting"):
        return f"service for {info['root']}: starting (pid {info['pid']})"
    if "started" not in info and info.get("stopping"):
        return f"service for {info['root']}: stopping (pid {info['pid']})"
    up = time.time() - float(info.get("started") or time.time())
    idle = info.get("idle_stop") or 0
    lines = [
        f"service for {info['root']}: {'ready' if info.get('ready') else 'starting'} "
        f"(pid {info['pid']}, up {up:.0f} s)",
        f"  clients: {info.get('clients', 0)}, active jobs: {info.get('active_jobs', 0)}",
        f"  database: {info.get('zeo')}",
        f"  Ray: {ray_line(info)}"
        + (" (open: other machines join with `RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=<a copy of "
           + info["ray_token"] + "> ray start --address=" + info["ray_address"] + "`)"
           if info.get("ray_open") and info.get("ray_address") else ""),
        f"  idle stop: {'never' if not idle else f'after {idle:g} s with no client and no active job'}",
    ]
    if info.get("listen"):
        lines.append(f"  TLS listener: {info['listen']} (clients: GANGA_LIKE_SERVICE={info['listen']}, "
                     f"GANGA_LIKE_SECRET=<a copy of {info['root']}/service-secret.pem>)")
    if info.get("web"):
        lines.append(f"  web view: {info['web']} (`ganga-like web` prints it with its token)")
    if info.get("this_client"):
        lines.append(f"  this client: {info['this_client']}")
    if info.get("stopping"):
        lines.append("  stopping")
    if info.get("boot_error"):
        lines.append(f"  start-up failed: {info['boot_error']}")
    return "\n".join(lines)


def log_tail(paths: ServicePaths, lines: int) -> list[str] | None:
    """The last ``lines`` lines of the service's log (None: there is no log yet)."""
    try:
        with open(paths.log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 200 * max(lines, 1)))
            text = handle.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    return text[-lines:]


def run(args: Any) -> int:
    """The ``ganga-like service`` subcommand."""
    from ..config import Config

    paths = ServicePaths(Config.from_env().root)
    if args.action == "start":
        info = start(paths, listen=args.listen, ray_open=args.ray_open)
        already = "already running: " if info.get("already_running") else ""
        print(json.dumps(info) if args.json else already + describe(info))
        return 0
    if args.action == "stop":
        result = stop(paths)
        print(json.dumps(result) if args.json else describe_stop(result))
        return 0
    if args.action == "status":
        running = status(paths)
        if running is None:
            print(json.dumps(None) if args.json else f"no service runs for {paths.root}")
            return NOT_RUNNING
        if Config.from_env().read_only:  # what this client may do, beside what the service is
            running = {**running, "this_client": "read-only (GANGA_LIKE_READ_ONLY=1)"}
        print(json.dumps(running) if args.json else describe(running))
        return 0
    tail = log_tail(paths, args.lines)
    if args.json:
        print(json.dumps({"path": paths.log, "lines": tail or []}))
    else:
        print("\n".join(tail) if tail is not None else f"no service log yet at {paths.log}")
    return 0
