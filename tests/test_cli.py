"""The ``ganga-like`` command as a shell sees it: real subprocesses, real exit codes.

Commands that only read (``--version``, ``jobs``, ``show``, ``wait`` on finished
jobs) never start Ray; each command that touches running work starts its own
local Ray (several seconds), so such runs are few and share one prepared
repository. Every subprocess gets its own ``RAY_TMPDIR``; afterwards no process
may remain that uses it or that runs in the test's workspace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

BIN = Path(sys.executable).parent
GANGA_LIKE = [str(BIN / "ganga-like")] if (BIN / "ganga-like").exists() else \
    [sys.executable, "-m", "ganga_like.cli"]
REPO = Path(__file__).resolve().parent.parent
STRAY_GRACE = 15.0  # Ray's helper processes exit shortly after the driver (slower under load)


# -- helpers (also used by test_examples.py and test_docs.py) ----------------------------

def gl_env(root: Path, ray_tmp: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GANGA_LIKE_DIR": str(root),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="glt-", dir="/tmp") if ray_tmp is None else ray_tmp,
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("GANGA_LIKE_RAY_ADDRESS", None)
    env.pop("GANGA_LIKE_REPOSITORY", None)
    return env


def stray_processes(root: Path | None, ray_tmp: str) -> list[str]:
    """Processes still using this run's Ray directory or (``root`` given) working in
    that repository's workspace."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or ())
            cwd = proc.info["cwd"] or ""
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if (ray_tmp and ray_tmp in cmd) or (root and cwd.startswith(str(root) + os.sep)):
            found.append(f"{proc.info['pid']}: {cmd[:120]}")
    return found


def kill_strays(root: Path | None, ray_tmp: str = "") -> None:
    """Last-resort cleanup of processes this test's runs started (matched by path)."""
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or ())
            cwd = proc.info["cwd"] or ""
            if (ray_tmp and ray_tmp in cmd) or (root and cwd.startswith(str(root) + os.sep)):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def run_gl(root: Path, *args: str, timeout: float = 90, check_clean: bool = True,
           ray_tmp: str | None = None, jobs_may_run: bool = False) -> subprocess.CompletedProcess:
    """Run ``ganga-like ARGS`` with GANGA_LIKE_DIR=root and assert it left nothing behind:
    no process of its Ray and (unless ``jobs_may_run``: jobs outlive sessions by design)
    no process in the repository's workspace."""
    env = gl_env(root, ray_tmp)
    try:
        result = subprocess.run([*GANGA_LIKE, *args], env=env, cwd=str(REPO), text=True,
                                capture_output=True, timeout=timeout)
        _check_clean(root, env["RAY_TMPDIR"], args, check_clean, jobs_may_run)
    finally:
        if ray_tmp is None:  # made here: nobody else needs it
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    return result


def _check_clean(root: Path, ray_tmp: str, args: tuple, check_clean: bool,
                 jobs_may_run: bool) -> None:
    env = {"RAY_TMPDIR": ray_tmp}
    if check_clean:
        deadline = time.monotonic() + STRAY_GRACE
        where = None if jobs_may_run else root
        strays = stray_processes(where, env["RAY_TMPDIR"])
        while strays and time.monotonic() < deadline:  # Ray's last helpers exit a little later
            time.sleep(0.2)
            strays = stray_processes(where, env["RAY_TMPDIR"])
        if strays:
            kill_strays(where, env["RAY_TMPDIR"])
        assert not strays, f"ganga-like {' '.join(args)} left processes running: {strays}"


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]


# -- commands that never start Ray ----------------------------------------------------------

def test_version():
    result = subprocess.run([*GANGA_LIKE, "--version"], text=True, capture_output=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("ganga_like ")


def test_jobs_on_an_empty_repository(tmp_path):
    result = run_gl(tmp_path / "gl", "jobs")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:2] == ["fqid", "status"]
    assert result.stdout.rstrip().endswith("0 jobs")
    assert result.stderr == ""


def test_jobs_json_parses(tmp_path):
    result = run_gl(tmp_path / "gl", "jobs", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_show_unknown_job_is_one_line_and_exit_1(tmp_path):
    result = run_gl(tmp_path / "gl", "show", "99")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("ganga-like: ") and "99" in line
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["frobnicate"], ["wait"], ["jobs", "--limit", "many"],
                                  ["show"]])
def test_bad_usage_exits_2(tmp_path, args):
    result = run_gl(tmp_path / "gl", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "usage: ganga-like" in result.stderr


# -- a prepared repository: real jobs for the verbs ---------------------------------------------

PREPARE = r'''
import time
done = Job(name='done', application=Executable(exe='/bin/echo', args=['hello']))
done.submit()
mixed = Job(name='mixed', application=Executable(exe='/bin/sh'),
            splitter=ArgSplitter(args=[['-c', 'echo fine'], ['-c', 'echo broken >&2; exit 3']]))
mixed.submit()
sleepers = [Job(name='sleeper', application=Executable(exe='/bin/sleep', args=['600']))
            for _ in range(2)]
for s in sleepers:
    s.submit()
runMonitoring([done, mixed], timeout=60)
deadline = time.time() + 30
while any(jobs(s.id).status != 'running' for s in sleepers) and time.time() < deadline:
    time.sleep(0.2)
print('prepared', done.id, mixed.id, *[s.id for s in sleepers],
      *[jobs(i).status for i in (done.id, mixed.id) + tuple(s.id for s in sleepers)])
'''


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Jobs 0 (completed), 1 (failed: one of two subjobs exits 3), 2 and 3 (sleep 600,
    left running by the preparing session, as a user's script would)."""
    root = tmp_path_factory.mktemp("cli") / "gl"
    script = root.parent / "prepare.py"
    script.write_text(PREPARE)
    ray_tmp = tempfile.mkdtemp(prefix="glt-", dir="/tmp")
    try:
        result = run_gl(root, "run", str(script), ray_tmp=ray_tmp, jobs_may_run=True)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "prepared 0 1 2 3 completed failed running running" in result.stdout, result.stdout
        yield root
    finally:
        kill_strays(root, ray_tmp)  # the sleepers, if a test failed before killing them
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _show(root: Path, fqid: str) -> dict:
    result = run_gl(root, "show", fqid, "--json", jobs_may_run=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_jobs_lists_the_prepared_jobs(prepared):
    result = run_gl(prepared, "jobs", "--json", check_clean=False)
    assert result.returncode == 0, result.stderr
    rows = {row["fqid"]: row for row in json.loads(result.stdout)}
    assert rows["1"]["subjobs"] == {"completed": 1, "failed": 1}
    assert rows["0"]["status"] == "completed" and rows["2"]["status"] == "running"


def test_jobs_works_read_only_while_another_process_holds_the_repository(prepared):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom ganga_like.session import Session\n"
         "s = Session()\nprint('holding', flush=True)\ntime.sleep(120)\n"],
        env=gl_env(prepared, ray_tmp=""), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)  # opens the repository only: no Ray, no RAY_TMPDIR needed
    try:
        assert holder.stdout.readline().strip() == "holding"
        listing = run_gl(prepared, "jobs", check_clean=False)
        assert listing.returncode == 0, listing.stderr
        assert "read-only: another session holds the repository" in listing.stdout
        assert "mixed" in listing.stdout
        as_json = run_gl(prepared, "jobs", "--json", check_clean=False)
        assert as_json.returncode == 0 and len(json.loads(as_json.stdout)) == 4
        # A command that must write is refused in one line that names the holder.
        refused = run_gl(prepared, "kill", "2", check_clean=False)
        assert refused.returncode == 1
        line = one_line(refused.stderr)
        assert f"pid {holder.pid}" in line and "held by another session" in line
    finally:
        holder.terminate()
        holder.wait(timeout=10)


def test_wait_exit_3_when_a_job_failed(prepared):
    result = run_gl(prepared, "wait", "1", jobs_may_run=True)
    assert result.returncode == 3, result.stderr
    assert run_gl(prepared, "wait", "0", jobs_may_run=True).returncode == 0


def test_wait_exit_4_on_timeout(prepared):
    started = time.monotonic()
    result = run_gl(prepared, "wait", "2", "--timeout", "1", jobs_may_run=True)
    assert result.returncode == 4, result.stderr
    line = one_line(result.stderr.replace("\r", "\n").splitlines()[-1])
    assert "timed out" in line and "2" in line
    assert time.monotonic() - started < 60


def test_kill_a_running_job(prepared):
    result = run_gl(prepared, "kill", "2", jobs_may_run=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2: killed"
    assert _show(prepared, "2")["status"] == "killed"
    # Killing it again is refused: nothing is running.
    again = run_gl(prepared, "kill", "2", jobs_may_run=True)
    assert again.returncode == 1 and "nothing to kill" in one_line(again.stderr)


def test_resubmit_the_failed_subjobs(prepared):
    before = _show(prepared, "1.1")
    result = run_gl(prepared, "resubmit", "1", jobs_may_run=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1: ")
    after = _show(prepared, "1.1")
    notes = [entry[3] for entry in after["history"]]
    assert len(after["history"]) > len(before["history"]) and "resubmit()" in notes
    # The completed subjob was left alone.
    assert _show(prepared, "1.0")["status"] == "completed"


def test_remove_kills_a_running_job_first(prepared):
    result = run_gl(prepared, "remove", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3: removed"
    missing = run_gl(prepared, "show", "3", jobs_may_run=True)
    assert missing.returncode == 1 and "no job" in one_line(missing.stderr)


def test_remove_a_finished_job(prepared):
    result = run_gl(prepared, "remove", "0", jobs_may_run=True)
    assert result.returncode == 0 and result.stdout.strip() == "0: removed"
    assert "0" not in {row["fqid"] for row in json.loads(run_gl(prepared, "jobs", "--json", jobs_may_run=True).stdout)}


def test_leaks_json_after_everything(prepared):
    result = run_gl(prepared, "leaks", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    # Killed, removed and finished: nothing of this repository runs any more.
    deadline = time.monotonic() + 5
    while stray_processes(prepared, "") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stray_processes(prepared, "") == []
