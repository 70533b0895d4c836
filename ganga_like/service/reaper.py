"""Ending what a dead service left of Ray.

Each service runs Ray with its own directory (recorded in ``service.json``
before Ray starts). Ray's processes (the GCS, the raylet, the dashboard and
runtime-env agents, the workers) either carry that directory on their command
line or, once Ray renamed them (``ray::DashboardAgent``, ``ray::IDLE``), hold
files open in it (their logs); they can outlive a service killed with SIGKILL.
The service's guardian, the next service, or the clean stop of this one ends
them. Payload processes are neither: they outlive the service by design and the
next one adopts them.

A child of a Ray worker is a payload, whatever it looks like: between the fork and
the exec of a wrapper (posix_spawn), the child still carries its parent's
``ray::`` title and file descriptors. A worker that outlived its raylet by an
instant may be launching a wrapper just as the guardian looks; taking that child
for Ray would end a subjob the next service must adopt.
"""

from __future__ import annotations

import os
import shutil
import time

import psutil

GRACE = 2.0


RAY_TITLE = "ray::"  # how Ray renames its agents and workers


def holds_files_in(pid: int, directory: str) -> bool:
    """Whether process ``pid`` has a file open under ``directory``."""
    prefix = directory.rstrip("/") + "/"
    try:
        entries = list(os.scandir(f"/proc/{pid}/fd"))
    except OSError:
        return False
    for entry in entries:
        try:
            if os.readlink(entry.path).startswith(prefix):
                return True
        except OSError:
            continue
    return False


def is_ray_process_of(cmdline: list[str] | tuple[str, ...], pid: int, ray_dir: str) -> bool:
    """Whether a process belongs to the Ray that runs in ``ray_dir``: named on its command
    line, or renamed by Ray and holding its files open there."""
    if any(ray_dir in part for part in cmdline):
        return True
    return bool(cmdline) and cmdline[0].startswith(RAY_TITLE) and holds_files_in(pid, ray_dir)


def processes_using(ray_dir: str) -> list[psutil.Process]:
    """The live processes of the Ray in ``ray_dir``, children of its workers excepted."""
    if not ray_dir:
        return []
    found: list[psutil.Process] = []
    workers: set[int] = set()
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        try:
            cmdline: list[str] = proc.info["cmdline"] or []
            if proc.pid == me or not is_ray_process_of(cmdline, proc.pid, ray_dir):
                continue
            if cmdline[0].startswith(RAY_TITLE):
                workers.add(proc.pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    # The parent id was read with the command line: a child caught between its fork and
    # its exec had a live worker for parent then (the worker waits for the exec).
    return [proc for proc in found if proc.info["ppid"] not in workers]


def reap(ray_dir: str, grace: float = GRACE) -> int:
    """TERM, then KILL after ``grace``, every process that uses ``ray_dir``; remove it."""
    victims = processes_using(ray_dir)
    for proc in victims:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(victims, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)
    if ray_dir and os.path.isdir(ray_dir):
        # Ray's workers may still be writing logs for an instant after their raylet went.
        for _ in range(3):
            shutil.rmtree(ray_dir, ignore_errors=True)
            if not os.path.exists(ray_dir):
                break
            time.sleep(0.1)
    return len(victims)
