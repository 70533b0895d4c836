"""Small builders for lifecycle tests."""

from __future__ import annotations

import time
from typing import Any

from ganga_like.backends.local.config import Local
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter


def sh_job(scripts: list[str], concurrency: int | None = None, **kwargs: Any) -> Job:
    """A master whose subjob i runs ``/bin/sh -c scripts[i]``."""
    return Job(
        application=Executable(exe="/bin/sh", args=["-c", "true"]),
        backend=Local(concurrency=concurrency),
        splitter=ArgSplitter(args=[["-c", script] for script in scripts]),
        **kwargs,
    )


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not reached in {timeout} s")


def statuses(job: Job) -> list[str]:
    return [sj.status.value for sj in job.subjobs]
