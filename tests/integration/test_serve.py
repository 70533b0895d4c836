"""`ganga-like serve`: a ZEO server that resolves the master's count conflicts itself.

ZEO resolves conflicts only for classes the *server* can import; this runs the real
command in a subprocess and checks that two clients moving different subjobs of one
master, from the same starting view, both commit without a retry.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import transaction

from ganga_like.config import Config
from ganga_like.model.lifecycle import set_status
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter
from ganga_like.repository import open_repository
from ganga_like.session import _split
from ganga_like.status import Status

GANGA_LIKE = os.path.join(os.path.dirname(sys.executable), "ganga-like")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [GANGA_LIKE, "serve", "--host", "127.0.0.1", "--port", str(port),
         "--path", str(tmp_path / "served" / "jobs.fs")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "ganga-like serve did not listen"
            time.sleep(0.05)
    yield Config.from_env(root=str(tmp_path / "client"), repository=f"zeo://127.0.0.1:{port}")
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        raise


def test_two_clients_moving_subjobs_of_one_master_need_no_retry(served):
    first = open_repository(served)
    second = open_repository(served)
    a, b = first.connect(), second.connect()
    try:
        def create() -> None:
            job = Job(splitter=ArgSplitter(args=[["0"], ["1"]]))
            a.jobs.add(job)
            _split(job)
            for sub in job._subjobs.values():
                set_status(sub, Status.SUBMITTING)
                set_status(sub, Status.SUBMITTED)

        a.write(create)
        deadline = time.monotonic() + 10
        while True:  # ZEO delivers the other client's commit asynchronously
            b.refresh()
            if len(b.jobs) == 1:
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)

        # Both read the master's counts, then each moves its own subjob and commits:
        # the second commit conflicts on StatusCounts and the server merges it.
        tm_a, tm_b = a.conn.transaction_manager, b.conn.transaction_manager
        tm_a.begin()
        tm_b.begin()
        job_a, job_b = a.jobs.get(0), b.jobs.get(0)
        assert job_a.subjob_counts == job_b.subjob_counts == {"submitted": 2}
        set_status(job_a.subjobs[0], Status.RUNNING)
        set_status(job_b.subjobs[1], Status.RUNNING)
        tm_a.commit()
        tm_b.commit()  # raises ConflictError if the server could not resolve it

        deadline = time.monotonic() + 10
        while True:
            a.refresh()
            if a.jobs.get(0).subjob_counts == {"running": 2}:
                break
            assert time.monotonic() < deadline, a.jobs.get(0).subjob_counts
            time.sleep(0.02)
        assert a.jobs.get(0).status is Status.RUNNING
    finally:
        transaction.abort()
        a.close()
        b.close()
        first.close()
        second.close()
