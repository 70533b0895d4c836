"""``make demo`` / ``ganga-like demo``: a real job of many subjobs on this machine."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ..backends.local.config import Local
from ..model.application import Executable
from ..model.job import Job
from ..model.splitters import ArgSplitter
from .progress import wait_with_progress
from .render import subjobs_section

# A little real work per subjob: a sum of squares in the shell, a line of output.
SCRIPT = ('n=$1; i=0; s=0; while [ $i -lt $((1000 + n)) ]; do s=$((s + i * i)); i=$((i + 1)); done; '
          'echo "subjob $n: sum of i^2 for i < $((1000 + n)) = $s"')


def run_demo(session: Any, subjobs: int = 200, quiet: bool = False) -> dict[str, Any]:
    """Submit the demo job, wait for it, and say what happened (``quiet``: say nothing);
    returns the summary ``ganga-like demo --json`` prints."""
    say = (lambda *a, **k: None) if quiet else print
    job = Job(
        application=Executable(exe="/bin/sh", args=["-c", SCRIPT, "demo"]),
        backend=Local(),
        splitter=ArgSplitter(args=[["-c", SCRIPT, "demo", str(i)] for i in range(subjobs)]),
        name="demo",
        comment=f"{subjobs} subjobs of shell arithmetic",
    )
    say(f"repository: {session.repository.location}")
    say("submitting (the service's first job starts Ray: a few seconds) ...", flush=True)
    started = time.monotonic()
    session.submit(job)
    say(f"submitted job {job.id} with {subjobs} subjobs in {time.monotonic() - started:.2f} s",
        flush=True)
    status = wait_with_progress(session, [job], stream=sys.stdout if not quiet else _Quiet())[0]
    elapsed = time.monotonic() - started
    session.refresh()
    say("\n".join(subjobs_section(job, None, 10)))
    say(f"\njob {job.id}: {status.value} in {elapsed:.2f} s")
    first = job.subjobs[0]
    say(f"outputs: {job.workspace}/<subjob>/output/ (stdout, stderr); "
        f"status files: {job.workspace}/<subjob>/status")
    say(f"e.g. {os.path.join(first.workdir, 'output', 'stdout')}: "
        f"{session.peek(first).strip()}")
    say(f"queue log: {session.config.queue_log}")
    return {"job": job.id, "status": status.value, "subjobs": job.subjob_counts,
            "elapsed_s": round(elapsed, 3), "repository": session.repository.location,
            "workspace": job.workspace, "queue_log": session.config.queue_log}


class _Quiet:
    """A stream that is not a terminal: the wait draws no progress line."""

    def isatty(self) -> bool:
        return False
