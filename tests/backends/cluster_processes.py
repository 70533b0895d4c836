"""The processes of a test cluster that a driver process started: found by its Ray
directory (on their command line or in their RAY_TMPDIR), for the leftover checks."""

from __future__ import annotations

import os

import psutil


def processes_of(ray_tmp: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            ray_tmpdir = (proc.info["environ"] or {}).get("RAY_TMPDIR", "")
            text = " ".join(proc.info["cmdline"] or []) + " " + ray_tmpdir
        except (psutil.Error, TypeError):
            continue
        if ray_tmp in text and proc.pid != os.getpid():
            found.append(proc)
    return found
