"""Small builders for lifecycle tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from ganga_like.backends.local.config import Local
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh_job(scripts: list[str], concurrency: int | None = None, **kwargs: Any) -> Job:
    """A master whose subjob i runs ``/bin/sh -c scripts[i]``."""
    return Job(
        application=Executable(exe="/bin/sh", args=["-c", "true"]),
        backend=Local(concurrency=concurrency),
        splitter=ArgSplitter(args=[["-c", script] for script in scripts]),
        **kwargs,
    )


def run_and_kill_a_session(root: str, env: dict, *args: str) -> str:
    """Run tests/lifecycle/crash_driver.py until its subjobs run, then SIGKILL it;
    return the id of the job it left behind (its repository is noted for the leak check)."""
    from tests import conftest

    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.lifecycle.crash_driver", root, *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = driver.stdout.readline() if driver.stdout is not None else ""
        assert line.startswith("RUNNING"), f"driver said {line!r}"
        _, job_id, repo_uuid = line.split()
        conftest.TEST_REPOSITORIES.add(repo_uuid)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    return job_id


def caught_in_submitting(session: Any, job: Job) -> None:
    """Register ``job`` and leave it as a crash in the middle of ``submit()`` does: split,
    every subjob moved to ``submitting`` (a new attempt) and the job marked active,
    nothing recorded of what the backend was sent."""
    from ganga_like.engine.core import _active_set, _split
    from ganga_like.model.lifecycle import set_status
    from ganga_like.status import Status

    session.register(job)

    def crash_during_submit() -> None:
        _split(job)
        for sub in job._subjobs.values():
            sub.submit_counter += 1
            set_status(sub, Status.SUBMITTING, source="user")
        _active_set(session.main.root).insert(job.id)

    session.write(crash_during_submit)


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not reached in {timeout} s")


def statuses(job: Job) -> list[str]:
    return [sj.status.value for sj in job.subjobs]
