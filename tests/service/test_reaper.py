"""The reaper ends what a dead service left of Ray, and never a payload a Ray worker is launching.

Real processes: a stand-in for a Ray worker (a process titled ``ray::`` that holds a
file open in the Ray directory, as Ray's renamed workers do) forks a child that keeps
the title and the descriptor, as a wrapper does between its fork and its exec.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from ganga_like.service import reaper

WORKER = """
import os, sys, time
log = open(sys.argv[1], "a")
child = os.fork()
if child == 0:
    time.sleep(120)
    os._exit(0)
with open(sys.argv[2] + ".tmp", "w") as out:
    out.write(str(child))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(120)
"""


def _start_worker(ray_dir, pid_file) -> tuple[subprocess.Popen, int]:
    log = ray_dir / "logs" / "worker.out"
    log.parent.mkdir(parents=True)
    worker = subprocess.Popen(["bash", "-c", 'exec -a "ray::LocalActor" "$0" -c "$1" "$2" "$3"',
                               sys.executable, WORKER, str(log), str(pid_file)])
    deadline = time.monotonic() + 20
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the stand-in worker did not fork"
        time.sleep(0.02)
    return worker, int(pid_file.read_text())


def test_a_child_of_a_ray_worker_caught_before_its_exec_is_left_and_the_worker_is_ended(tmp_path):
    ray_dir = tmp_path / "ray"
    worker, child = _start_worker(ray_dir, tmp_path / "child.pid")
    try:
        # The child looks like Ray in every way the reaper reads, but its parent is a worker.
        assert psutil.Process(child).cmdline()[0] == "ray::LocalActor"
        assert reaper.holds_files_in(child, str(ray_dir))
        assert [p.pid for p in reaper.processes_using(str(ray_dir))] == [worker.pid]

        assert reaper.reap(str(ray_dir), grace=5) == 1
        worker.wait(timeout=10)  # ended (psutil, our child's reaper here, took its status)
        assert psutil.Process(child).status() != psutil.STATUS_ZOMBIE, "the worker's child was ended"
        assert not ray_dir.exists()
    finally:
        for pid in (worker.pid, child):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        worker.wait(timeout=10)


def test_a_titled_process_that_holds_no_file_of_the_ray_directory_is_not_ray(tmp_path):
    ray_dir = tmp_path / "ray"
    other_dir = tmp_path / "other"
    worker, child = _start_worker(other_dir, tmp_path / "child.pid")
    try:
        ray_dir.mkdir()
        assert reaper.processes_using(str(ray_dir)) == []
    finally:
        for pid in (worker.pid, child):
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
