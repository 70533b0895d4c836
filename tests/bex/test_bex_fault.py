"""The service killed (SIGKILL) while a BEX job runs on a host: the queue's files say what
the database says at each step after it. Its own service and host n1 (a Ray node joined
to the service's head), since the kill takes the joined node down with the head's Ray.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from tests.bex.test_bex_service import job_file, join_host, start_service
from tests.service.test_service import service_pid, wait_for
from tests.test_cli import finish_root, run_gl


def code_of(path: Path) -> str:
    try:
        return path.read_text().split("Status: ")[1].split("\n")[0]
    except (FileNotFoundError, IndexError):
        return ""


def test_a_kill_9_of_the_service_while_a_job_file_runs(tmp_path):
    root = tmp_path / "gl"
    go = tmp_path / "go"
    stat = root / "queue" / "hosts" / "n1" / "held-1.stat"
    try:
        start_service(root)
        join_host(root, "n1")
        body = f'echo started; while [ ! -e "{go}" ]; do sleep 0.2; done; echo finished\n'
        path = job_file(root, "held.job", "ID: held-1\n\n" + body)
        submitted = run_gl(root, "submit", str(path), "--hosts", "n1", check_clean=False)
        assert submitted.returncode == 0, submitted.stderr
        wait_for(lambda: code_of(stat) == "RUN", 60, "the job to run on n1")
        old = service_pid(root)
        os.kill(old, signal.SIGKILL)  # the service, its Ray and the node joined to it go
        wait_for(lambda: not psutil.pid_exists(old) or
                 psutil.Process(old).status() == psutil.STATUS_ZOMBIE, 30, "the service to die")
        stat.unlink()  # and a write it had not made yet is lost with it
        # A new service: it rewrites the job's files from the database, then recovery finds
        # the payload's host gone: running, held, its node lost (NOPING).
        start_service(root)
        wait_for(lambda: code_of(stat) in ("RUN", "NOPING"), 60, "the .stat to be written again")
        wait_for(lambda: code_of(stat) == "NOPING", 60, "recovery to find n1 gone")
        # Host n1 comes back: its agent finds the payload still running and watches it again.
        join_host(root, "n1")
        wait_for(lambda: code_of(stat) == "RUN", 60, "the payload to be watched again")
        go.write_text("")
        done = run_gl(root, "wait", "-1", "--timeout", "120", check_clean=False)
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(lambda: not stat.exists(), 30, "the OK job to leave n1's queue")
        codes = [line.split()[4] for line in (root / "queue" / "log").read_text().splitlines()
                 if line.split()[3] == "held-1"]
        assert codes[0] == "NEW" and codes[-1] == "OK" and "RUN" in codes, codes
        assert codes.count("OK") == 1, codes
    finally:
        finish_root(root, jobs_may_run=True, what="the BEX fault test's service and node")
