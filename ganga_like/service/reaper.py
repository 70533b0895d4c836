"""Ending what a dead service left of Ray.

Each service runs Ray with its own directory (recorded in ``service.json``
before Ray starts). Ray's helper processes (the dashboard and runtime-env
agents, the raylet, the GCS) carry that directory on their command line and
can outlive a service killed with SIGKILL; the next service, or the clean stop
of this one, ends them. Payload processes never carry it: they outlive the
service by design and the next one adopts them.
"""

from __future__ import annotations

import os
import shutil
import time

import psutil

GRACE = 2.0


def processes_using(ray_dir: str) -> list[psutil.Process]:
    if not ray_dir:
        return []
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid == me:
                continue
            if any(ray_dir in part for part in proc.info["cmdline"] or ()):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


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
