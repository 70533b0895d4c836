"""A submit of many subjobs returns once its first batch is handed over; the service
sends the rest (the stream, docs/architecture.md). What a SIGKILL of the service and a
kill() while it sends leave: every subjob sent once, or not at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from ganga_like.engine.operations.common import SUBMIT_CHUNK
from tests.service.test_service import client, nothing_runs_for, service_pid, wait_for, waits_to_completed
from tests.test_cli import REPO, finish_root, gl_env, run_gl

# A first batch, a full second one sent after submit() returned, and one subjob more: the
# stream cannot take that last one before the monitor has recorded the whole second batch
# (a thousand subjobs), so a SIGKILL sent as submit() returns finds subjobs still to send
# (the next service's log says how many), and every case of a subjob's fate is there: run
# from the first batch, in flight in the second, never sent. A third full batch adds none.
N = 2 * SUBMIT_CHUNK + 1
# A kill sent as soon as submit() returned meets the stream while it sends: its client
# has to see the submit's commit and ask, which took over a second on a busy machine.
N_KILLED = 8 * SUBMIT_CHUNK


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One root for the module (each test reads only its own job, by its id)."""
    root = tmp_path_factory.mktemp("stream") / "gl"
    yield root
    finish_root(root, what="the stream tests' service")


def submit_in_background(root: Path, args: str, then: str = "", n: int = N,
                         ) -> tuple[subprocess.Popen, str, str]:
    """A script submitting one job of ``n`` subjobs of ``/bin/sh -c ARGS[i]``, then running
    ``then``; returns the script and what it printed as submit() returned: the job's id
    and status."""
    script = textwrap.dedent(f"""
        from ganga_like.gpi import *
        j = Job(application=Executable(exe='/bin/sh'),
                splitter=ArgSplitter(args=[['-c', {args!r}.format(i=i)] for i in range({n})]))
        j.submit()
        print(j.id, j.status.value, flush=True)
    """) + textwrap.dedent(then)
    proc = subprocess.Popen([sys.executable, "-c", script], env=gl_env(root), cwd=str(REPO),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline().split()
    assert len(line) == 2, proc.communicate(timeout=60)
    return proc, line[0], line[1]


def test_a_sigkill_of_the_service_while_it_sends_leaves_each_subjob_run_once(root):
    runs = root.parent / "runs"
    proc, job_id, status = submit_in_background(root, f"echo {{i}} >> {runs}")
    old_pid = service_pid(root)
    os.kill(old_pid, signal.SIGKILL)  # as submit() returned: the rest is still to send
    proc.communicate(timeout=60)
    assert status == "submitting"  # returned before its subjobs were all sent
    wait_for(lambda: not psutil.pid_exists(old_pid) or
             psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE, what="the service to die")
    waits_to_completed(root, job_id)
    # The next service said what it sent again, and every subjob ran exactly once.
    assert f"job {job_id}: sending the" in (root / "service.log").read_text()
    assert sorted(int(line) for line in runs.read_text().split()) == list(range(N))
    nothing_runs_for(root, job_id)


def test_a_service_stop_while_it_sends_leaves_the_rest_to_the_next_service(root):
    """``service stop`` as submit() returns: the streamer ends between batches (or as it
    hands the monitor its next batch, once the monitor has ended), quietly; the next
    service sends the rest, and every subjob runs once."""
    runs = root.parent / "runs-stopped"
    log = root / "service.log"
    seen = log.stat().st_size if log.exists() else 0
    proc, job_id, status = submit_in_background(root, f"echo {{i}} >> {runs}")
    first = service_pid(root)
    assert run_gl(root, "service", "stop", check_clean=False).returncode == 0
    proc.communicate(timeout=60)
    assert status == "submitting"
    waits_to_completed(root, job_id)
    assert service_pid(root) != first
    assert sorted(int(line) for line in runs.read_text().split()) == list(range(N))
    with open(log) as handle:
        handle.seek(seen)
        told = handle.read()
    # (ZEO logs a client that went away without closing its connection; nothing of ours fails)
    assert "Traceback" not in told and "failed" not in told, told[-3000:]
    nothing_runs_for(root, job_id)


def test_kill_while_it_sends_stops_the_stream(root):
    proc, job_id, status = submit_in_background(root, "sleep 60", then="""
        import json, time
        j.kill()  # at once: the service is sending its second batch
        after = j.subjob_counts
        time.sleep(1.5)  # a stream that went on would move 'new' subjobs meanwhile
        sent = j.subjobs[{SUBMIT_CHUNK}]  # the first subjob the service sent after submit()
        causes = [h[5][0] for h in sent.history if h[2] == 'submitting']
        print(json.dumps([j.status.value, after, j.subjob_counts, str(j.why()), causes]))
    """.replace("{SUBMIT_CHUNK}", str(SUBMIT_CHUNK)), n=N_KILLED)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert status == "submitting"
    status, after, later, why, causes = json.loads(out)
    assert causes == ["submit"]  # sent once, by the stream, in the name of the submit
    assert status == "killed"
    assert after == later, "subjobs were sent after the kill"
    assert set(after) <= {"killed", "new"} and after.get("new", 0) > 0, after
    assert sum(after.values()) == N_KILLED
    assert f"its submission stopped (kill {job_id})" in why and f"{after['new']} stay new" in why
    nothing_runs_for(root, job_id)


def test_subjobs_sent_by_the_stream_get_their_input_files(root, tmp_path):
    """The stream takes its batches through the monitor's connection and copies their
    input files on its own thread: each subjob it sent ran with them."""
    (tmp_path / "data.txt").write_text("payload-input\n")
    runs = tmp_path / "runs"
    n = SUBMIT_CHUNK + 2
    result = client(root, f"""
        j = Job(application=Executable(exe='/bin/sh'),
                inputfiles=[LocalFile('data.txt', localDir={str(tmp_path)!r})],
                splitter=ArgSplitter(args=[['-c', 'read x < data.txt; echo {{i}} $x >> {runs}'.format(i=i)]
                                           for i in range({n})]))
        j.submit()
        print(j.wait(timeout=240).value, j.subjob_counts)
    """, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "completed", result.stdout
    lines = sorted(runs.read_text().splitlines(), key=lambda line: int(line.split()[0]))
    assert lines == [f"{i} payload-input" for i in range(n)]
