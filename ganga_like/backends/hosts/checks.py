"""Verify, cleanup and repair as they run ON a host (called by its agent), and where a site
configures them.

A host is configured by the environment its Ray node was started with (``ray start``
on that machine; ``Cluster.add_node(env_vars=...)`` in tests): the agent, a worker of
that node, inherits it. Nothing else on the machine has to agree.

==============================  =========================================================
``GANGA_LIKE_SCRATCH``          the host's scratch directory (default
                                ``<tmp>/ganga_like-scratch/<host>``); payloads get it as
                                ``GANGA_LIKE_SCRATCH``; cleanup and repair empty it
``GANGA_LIKE_MIN_FREE_MB``      verify fails when the file system of the scratch
                                directory has less free space (MB; default 100)
``GANGA_LIKE_VERIFY_COMMAND``   a site check (``sh -c``, in the scratch directory): verify
                                fails unless it exits 0
``GANGA_LIKE_REPAIR_COMMAND``   run by repair (when the host's protection allows software
                                repair), before verify runs again
``GANGA_LIKE_CLEANUP_COMMAND``  run by cleanup (``reboot_before`` / ``reboot_after``, a
                                killed subjob), before the scratch directory is emptied
==============================  =========================================================

Each step answers ``(ok, note)``, the note one line. A record of the check under way is
kept beside the scratch directory (``<scratch>.check``): a service that dies during a
check leaves it there, and the next one verifies that host again before using it. A
check that leaves the host Repair Failed leaves that word there too, for the same end.
Likewise ``<scratch>.dirty`` marks a host a subjob ran on since its last cleanup (set
as a payload starts, removed by a cleanup), so a restarted service knows it is dirty.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

SCRATCH_VAR = "GANGA_LIKE_SCRATCH"
MIN_FREE_VAR = "GANGA_LIKE_MIN_FREE_MB"
VERIFY_VAR = "GANGA_LIKE_VERIFY_COMMAND"
REPAIR_VAR = "GANGA_LIKE_REPAIR_COMMAND"
CLEANUP_VAR = "GANGA_LIKE_CLEANUP_COMMAND"
DEFAULT_MIN_FREE_MB = 100.0
COMMAND_TIMEOUT = 300.0  # seconds a site command may take before it counts as failed

Answer = tuple[bool, str]


def scratch_of(host: str) -> str:
    return os.environ.get(SCRATCH_VAR) or os.path.join(tempfile.gettempdir(), "ganga_like-scratch", host)


def _record_path(host: str) -> str:
    return scratch_of(host).rstrip("/") + ".check"


def begin(host: str, status: str) -> None:
    """Record that a check (``status``: Verifying, Cleaning, Repairing) starts on this host."""
    path = _record_path(host)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as record:
        record.write(status + "\n")


def end(host: str, left: str = "") -> None:
    """The check ended: its record goes, or says ``left`` (Repair Failed: what a failed
    check leaves the host as, which the next service verifies again before using it)."""
    if left:
        begin(host, left)
        return
    try:
        os.unlink(_record_path(host))
    except FileNotFoundError:
        pass


def unfinished(host: str) -> str:
    """The check an earlier service left under way on this host ('' none)."""
    try:
        with open(_record_path(host)) as record:
            return record.read().strip()
    except OSError:
        return ""


def _dirty_path(host: str) -> str:
    return scratch_of(host).rstrip("/") + ".dirty"


def mark_dirty(host: str) -> None:
    """A subjob's payload starts on this host: it is dirty until its next cleanup."""
    path = _dirty_path(host)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "a").close()


def is_dirty(host: str) -> bool:
    return os.path.exists(_dirty_path(host))


def verify(host: str) -> Answer:
    """The agent answered (we run); free disk above the threshold; the site check exits 0."""
    scratch = scratch_of(host)
    try:
        os.makedirs(scratch, exist_ok=True)
        free_mb = shutil.disk_usage(scratch).free / 2**20
    except OSError as error:
        return False, f"scratch directory {scratch} unusable: {error}"
    try:
        threshold = float(os.environ.get(MIN_FREE_VAR) or DEFAULT_MIN_FREE_MB)
    except ValueError:
        return False, f"{MIN_FREE_VAR}={os.environ.get(MIN_FREE_VAR)!r} is not a number of MB"
    if free_mb < threshold:
        return False, f"free disk under {scratch} is {free_mb:.0f} MB, below the {threshold:g} MB threshold"
    ok, note = _site_command(VERIFY_VAR, scratch, "verify")
    return ok, note or f"{free_mb:.0f} MB free under {scratch}"


def cleanup(host: str) -> Answer:
    """The site cleanup command (if any), then the scratch directory emptied."""
    scratch = scratch_of(host)
    ok, note = _site_command(CLEANUP_VAR, scratch, "cleanup")
    if not ok:
        return ok, note
    ok, note = clear_scratch(scratch)
    if ok and is_dirty(host):
        os.unlink(_dirty_path(host))
    return ok, note


def repair(host: str, clear: bool, command: bool) -> Answer:
    """What the protection allows (``clear``: empty scratch; ``command``: the site repair
    command), then verify again."""
    scratch = scratch_of(host)
    done = []
    if clear:
        ok, note = clear_scratch(scratch)
        if not ok:
            return ok, note
        done.append("scratch cleared")
    if command:
        ok, note = _site_command(REPAIR_VAR, scratch, "repair")
        if not ok:
            return ok, note
        done.append(note or "no site repair command")
    ok, note = verify(host)
    return ok, "; ".join([*done, ("verify passed: " if ok else "verify failed: ") + note])


def clear_scratch(scratch: str) -> Answer:
    try:
        os.makedirs(scratch, exist_ok=True)
        for name in os.listdir(scratch):
            path = os.path.join(scratch, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    except OSError as error:
        return False, f"cannot clear scratch directory {scratch}: {error}"
    return True, f"scratch {scratch} cleared"


def _site_command(var: str, cwd: str, what: str) -> Answer:
    """Run the site command named by ``var`` (``sh -c``); (True, '') when none is set."""
    command = os.environ.get(var, "").strip()
    if not command:
        return True, ""
    started = time.monotonic()
    try:
        done = subprocess.run(["/bin/sh", "-c", command], cwd=cwd, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, f"site {what} command ({var}) did not end within {COMMAND_TIMEOUT:g} s"
    except OSError as error:
        return False, f"site {what} command ({var}) could not start: {error}"
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return False, (f"site {what} command ({var}) exited {done.returncode}"
                       + (f": {said[-1][:200]}" if said else ""))
    return True, f"site {what} command passed in {time.monotonic() - started:.1f} s"
