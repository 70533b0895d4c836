"""``make demo`` / ``ganga-like demo``: a real job of many subjobs on this machine."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from .backends.local.config import Local
from .model.application import Executable
from .model.job import Job
from .model.splitters import ArgSplitter
from .model.table import subjobs_table
from .progress import wait_with_progress

# A little real work per subjob: a sum of squares in the shell, a line of output.
SCRIPT = ('n=$1; i=0; s=0; while [ $i -lt $((1000 + n)) ]; do s=$((s + i * i)); i=$((i + 1)); done; '
          'echo "subjob $n: sum of i^2 for i < $((1000 + n)) = $s"')


def run_demo(session: Any, subjobs: int = 200) -> Any:
    job = Job(
        application=Executable(exe="/bin/sh", args=["-c", SCRIPT, "demo"]),
        backend=Local(),
        splitter=ArgSplitter(args=[["-c", SCRIPT, "demo", str(i)] for i in range(subjobs)]),
        name="demo",
        comment=f"{subjobs} subjobs of shell arithmetic",
    )
    print(f"repository: {session.repository.location}")
    print("starting the local backend (Ray) ...", flush=True)
    started = time.monotonic()
    session.submit(job)
    print(f"submitted job {job.id} with {subjobs} subjobs in {time.monotonic() - started:.2f} s",
          flush=True)
    status = wait_with_progress(session, [job], stream=sys.stdout)[0]
    elapsed = time.monotonic() - started
    session.refresh()
    print(subjobs_table(job, limit=10))
    print(f"\njob {job.id}: {status.value} in {elapsed:.2f} s")
    first = job.subjobs[0]
    print(f"outputs: {job.workspace}/<subjob>/output/ (stdout, stderr); "
          f"status files: {job.workspace}/<subjob>/status")
    print(f"e.g. {os.path.join(first.workdir, 'output', 'stdout')}: "
          f"{session.peek(first).strip()}")
    print(f"queue log: {session.config.queue_log}")
    return status
