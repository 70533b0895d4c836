"""Run as a subprocess by test_recovery (and test_slurm_recovery, with a Slurm conf):
submit, report, then wait to be killed."""

from __future__ import annotations

import sys
import time

from ganga_like.backends.slurm.config import Slurm
from ganga_like.config import Config
from ganga_like.engine.core import Engine
from tests.lifecycle.helpers import sh_job


def main(root: str, n: int, seconds: float, concurrency: int, slurm_conf: str = "") -> None:
    session = Engine(Config.from_env(root=root))
    job = sh_job([f"sleep {seconds}"] * n, concurrency=concurrency)
    if slurm_conf:  # the same job as one array on that Slurm, `concurrency` tasks at once
        job.backend = Slurm(conf=slurm_conf, max_running=concurrency)
    session.submit(job)
    while True:
        session.refresh()
        if job.subjob_counts.get("running", 0) == min(n, concurrency):
            break
        time.sleep(0.05)
    print(f"RUNNING {job.id} {session.repo_uuid}", flush=True)
    time.sleep(600)  # the test kills us with SIGKILL


if __name__ == "__main__":
    n = int(sys.argv[2])
    main(sys.argv[1], n, float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else n,
         sys.argv[5] if len(sys.argv) > 5 else "")
