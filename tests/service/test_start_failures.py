"""A service that cannot start says why at once; nothing stale stops the next start.

Driven as a new user meets it: the ``ganga-like`` command with a fresh HOME and no
Ray or ganga_like variable but the root. A start that fails names what to do in one
line, within seconds, and leaves no process of its own (its guardian included). A
stale socket, a stale lock or state file, a dead service's Ray directory, a ``~/.ray``
that is not what Ray expects, or a repository deep in the file tree never stop a
start; a directory the user made keeps its mode; a service whose root is deleted
notices and stops, and leaves alone what the next service made there meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ganga_like.channel.paths import ServicePaths, connectable
from ganga_like.client import autostart
from ganga_like.service import reaper
from tests.service.test_service import client, service_pid
from tests.test_cli import GANGA_LIKE, REPO, finish_root, gl_env, run_gl

START_FAILURE_BOUND = 15.0  # seconds; measured ≈0.6 s here (the aim: within 5 s)


def _lock_database(root: Path):
    from ZODB.FileStorage import FileStorage

    (root / "repository").mkdir(parents=True)
    return FileStorage(str(root / "repository" / "jobs.fs"))  # holds jobs.fs.lock


def _damage_database(root: Path):
    (root / "repository").mkdir(parents=True)
    (root / "repository" / "jobs.fs").write_bytes(b"garbage, not a FileStorage")


def _block_a_socket(root: Path):
    (root / "zeo.sock").mkdir(parents=True)


def _service_processes(root: Path) -> list[str]:
    """The root's service and any guardian (the guardian names its service's pid)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or ())
        if f"ganga_like.service.main --root {root}" in cmd or "ganga_like.service.guardian" in cmd \
                and str(root) in " ".join(_environ(proc)):
            found.append(f"{proc.pid}: {cmd[:100]}")
    return found


def _environ(proc: psutil.Process) -> list[str]:
    try:
        return [f"{k}={v}" for k, v in proc.environ().items()]
    except psutil.Error:
        return []


@pytest.mark.parametrize("setup, words", [
    (_lock_database, ["is in use by another process (pid", "stop that program"]),
    (_damage_database, ["is damaged (FileStorageFormatError)", "restore it from a backup",
                        "python -m ZODB.fsrecover"]),
    (_block_a_socket, ["zeo.sock is in the way", "move it out of"]),
], ids=["database-locked", "database-damaged", "socket-path-taken"])
def test_a_start_that_fails_says_why_in_one_line_and_leaves_nothing(tmp_path, setup, words):
    root = tmp_path / "gl"
    holder = setup(root)
    try:
        started = time.monotonic()
        result = run_gl(root, "jobs", check_clean=False)
        elapsed = time.monotonic() - started
        assert result.returncode == 1, result.stdout + result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert "Traceback" not in result.stderr, result.stderr
        assert "could not start" in last and all(w in last for w in words), last
        assert elapsed < START_FAILURE_BOUND, f"said why after {elapsed:.1f} s"
        deadline = time.monotonic() + 5
        while _service_processes(root) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _service_processes(root), _service_processes(root)
    finally:
        if holder is not None:
            holder.close()
        finish_root(root)


def test_nothing_stale_stops_a_start_at_any_depth_and_a_deleted_root_stops_its_service(tmp_path):
    # A directory the user made (0755), deep enough that its sockets' paths are longer
    # than the kernel takes, holding what a killed service left behind.
    deep = tmp_path.joinpath(*["a-long-directory-name-" + str(i) for i in range(6)])
    root = deep / "gl"
    root.mkdir(parents=True)
    root.chmod(0o755)
    assert len(str(root / "service.sock")) > 108
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(connectable(str(root / "service.sock")))  # a socket nobody listens on
    stale.close()
    (root / "service.lock").write_text("999999")
    (root / "service.json").write_text(json.dumps({"pid": 999999, "ray_dir": "/tmp/gls-gone"}))
    home = tmp_path / "home"
    home.mkdir()
    (home / ".ray").write_text("not a directory")  # Ray's default token place is unusable
    try:
        done = client(root, """
            j = Job(application=Executable(exe='/bin/echo', args=['deep']))
            j.submit(); j.wait(timeout=60)
            print(j.status, j.peek().strip())
        """, env_extra={"HOME": str(home)})
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split() == ["completed", "deep"]
        assert stat.S_IMODE(root.stat().st_mode) == 0o755, "the user's directory changed mode"
        for name in ("repository", "workspace", "service.log", "log", "ray-auth-token"):
            assert stat.S_IMODE((root / name).stat().st_mode) & 0o077 == 0, name
        assert (home / ".ray").read_text() == "not a directory"

        state = json.loads((root / "service.json").read_text())
        pid, ray_dir = state["pid"], state["ray_dir"]
        for path in sorted(root.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
        root.rmdir()
        deadline = time.monotonic() + 30
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not psutil.pid_exists(pid), "the service of a deleted root still runs"
        deadline = time.monotonic() + 15
        while reaper.processes_using(ray_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not reaper.processes_using(ray_dir), "the deleted root's Ray still runs"
    finally:
        root.mkdir(parents=True, exist_ok=True)
        finish_root(root)


def test_a_root_deleted_and_used_again_at_once_keeps_the_next_service_reachable(tmp_path):
    """A user deletes the repository and runs a script at once, while its service still
    runs: that service stops once it sees its root gone, and must leave alone the files
    the next service made there under the same names. It removed the next one's
    database socket: that service stayed up, and every command timed out ("cannot
    reach the database server") until its idle stop, 15 minutes later. The old service
    is held (SIGSTOP) until the next one runs, as a loaded machine holds it by chance."""
    root = tmp_path / "gl"
    try:
        assert client(root, "print(len(jobs))").returncode == 0, "the first service did not start"
        old = json.loads((root / "service.json").read_text())["pid"]
        os.kill(old, signal.SIGSTOP)
        try:
            shutil.rmtree(root)
            first = client(root, """
                j = Job(application=Executable(exe='/bin/echo', args=['again']))
                j.submit(); j.wait(timeout=60)
                print(j.status, j.peek().strip())
            """)
        finally:
            os.kill(old, signal.SIGCONT)
        assert first.returncode == 0, first.stderr[-3000:]
        assert first.stdout.split() == ["completed", "again"]
        deadline = time.monotonic() + 30
        while psutil.pid_exists(old) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not psutil.pid_exists(old), "the service of the deleted root still runs"
        for name in ("zeo.sock", "service.sock", "service.json"):
            assert (root / name).exists(), f"{name} of the running service was removed"
        assert json.loads((root / "service.json").read_text())["pid"] != old
        again = client(root, "print(len(jobs), jobs(0).status)", timeout=60)
        assert again.returncode == 0, again.stderr[-3000:]
        assert again.stdout.split() == ["1", "completed"]
    finally:
        finish_root(root)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_service_stopped_before_it_answers_its_client_is_started_again(tmp_path, signum):
    """A command starts the service, and the admin's stop (``service stop`` sends a
    service not yet answering a SIGTERM) or a kill (an OOM kill) comes before that
    service answered it: the command starts another and goes on. It ended "could not
    start (exit code 0): ... INFO stopped" (or "exit code -9") although no start failed."""
    root = tmp_path / "gl"
    paths = ServicePaths(str(root))
    try:
        command = subprocess.Popen([*GANGA_LIKE, "jobs", "--json"], env=gl_env(root),
                                   cwd=str(REPO), text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (autostart.service_alive(paths) and paths.holder_pid()):
            assert time.monotonic() < deadline and command.poll() is None, "no service started"
            time.sleep(0.005)
        first = paths.holder_pid()
        assert first is not None
        os.kill(first, signum)  # it holds its lock: its handler of SIGTERM is set
        out, err = command.communicate(timeout=120)
        assert command.returncode == 0, err[-3000:]
        assert json.loads(out) == []
        assert service_pid(root) not in (None, first)
    finally:
        finish_root(root)


def test_a_second_service_for_a_root_says_which_one_runs_in_one_line(tmp_path):
    """A service started while one runs waits out a client's look at the lock
    (``service.main.LOCK_PATIENCE``), then says which one runs and exits 1, leaving the
    running one as it was."""
    root = tmp_path / "gl"
    paths = ServicePaths(str(root))
    try:
        assert run_gl(root, "jobs", check_clean=False).returncode == 0
        running = paths.holder_pid()
        assert running is not None
        second = subprocess.run([sys.executable, "-m", "ganga_like.service.main", "--root", str(root)],
                                env=gl_env(root), cwd=str(REPO), text=True, capture_output=True,
                                timeout=60)
        assert second.returncode == 1, second.stderr
        assert second.stderr.strip() == (
            f"ganga-like service: a ganga_like service already runs for {root} (pid {running}); "
            f"use it, or stop it first with `ganga-like service stop`")
        assert paths.holder_pid() == running and service_pid(root) == running
    finally:
        finish_root(root)


def test_a_repository_that_cannot_be_a_directory_is_one_line(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    for root in (a_file, a_file / "below"):
        result = run_gl(root, "jobs", check_clean=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        line = result.stderr.strip()
        assert "\n" not in line and f"the repository {root} cannot be used" in line, line
        assert "set GANGA_LIKE_DIR to a directory you can write" in line, line
