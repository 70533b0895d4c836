"""The ``ganga-like`` command as a shell sees it: real subprocesses, real exit codes.

Every command is a client of the root's service, which the first command starts
in the background (with Ray, a few seconds) and which then serves the following
ones at once. A test's root gets one Ray directory; when the test (or a module's
fixture) is done with the root, the service is stopped and no process may remain
that uses that Ray directory, runs the service, or works in the root's workspace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from ganga_like.service.reaper import is_ray_process_of

BIN = Path(sys.executable).parent
GANGA_LIKE = [str(BIN / "ganga-like")] if (BIN / "ganga-like").exists() else \
    [sys.executable, "-m", "ganga_like.cli"]
REPO = Path(__file__).resolve().parent.parent
STRAY_GRACE = 15.0  # Ray's helper processes exit shortly after the service (slower under load)


# -- helpers (also used by test_examples.py, test_docs.py and tests/service/) -------------

_RAY_DIRS: dict[str, str] = {}


def ray_dir_for(root: Path) -> str:
    """One Ray directory per root (its service's Ray lives under it)."""
    key = str(root)
    if key not in _RAY_DIRS:
        _RAY_DIRS[key] = tempfile.mkdtemp(prefix="glt-", dir="/tmp")  # short: socket paths
    return _RAY_DIRS[key]


def gl_env(root: Path, ray_tmp: str | None = None) -> dict[str, str]:
    """A new user's environment (conftest's fresh HOME; no Ray or ganga_like variable,
    not even those this test process's own Ray settled) with the root and a Ray
    directory of the test's own: places only, no behaviour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "GANGA_LIKE_"))}
    env.update({
        "GANGA_LIKE_DIR": str(root),
        "RAY_TMPDIR": ray_dir_for(root) if ray_tmp is None else ray_tmp,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def stray_processes(root: Path | None, ray_tmp: str) -> list[str]:
    """Processes still using this run's Ray directory, running the root's service, or
    (``root`` given) working in that repository's workspace."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or ())
            cwd = proc.info["cwd"] or ""
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if (ray_tmp and is_ray_process_of(proc.info["cmdline"] or (), proc.pid, ray_tmp)) or \
                (root and cwd.startswith(str(root) + os.sep)) or \
                (root and "ganga_like.service.main" in cmd and f"--root {root}" in cmd):
            found.append(f"{proc.info['pid']}: {cmd[:120]}")
    return found


def kill_strays(root: Path | None, ray_tmp: str = "") -> None:
    """Last-resort cleanup of processes this test's runs started (matched by path)."""
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or ())
            cwd = proc.info["cwd"] or ""
            if (ray_tmp and is_ray_process_of(proc.info["cmdline"] or (), proc.pid, ray_tmp)) or \
                    (root and cwd.startswith(str(root) + os.sep)) or \
                    (root and "ganga_like.service.main" in cmd and f"--root {root}" in cmd):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def stop_service(root: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([*GANGA_LIKE, "service", "stop"], env=gl_env(root), cwd=str(REPO),
                          text=True, capture_output=True, timeout=timeout)


def finish_root(root: Path, jobs_may_run: bool = False, what: str = "") -> None:
    """Stop the root's service and assert that nothing of it is left: no process of its
    Ray, not the service, and (unless ``jobs_may_run``) nothing in its workspace."""
    ray_tmp = ray_dir_for(root)
    try:
        stopped = stop_service(root)
        assert stopped.returncode == 0, stopped.stderr
        where = None if jobs_may_run else root
        early = [s for s in stray_processes(root, "") if "ganga_like.service.main" in s] \
            if jobs_may_run else []
        assert_no_strays(where, ray_tmp, what or "the service", early)
    finally:
        if not jobs_may_run:
            kill_strays(root, ray_tmp)
        shutil.rmtree(_RAY_DIRS.pop(str(root), ray_tmp), ignore_errors=True)


def assert_no_strays(where: Path | None, ray_tmp: str, what: str, seen: list[str] | None = None) -> None:
    """No process of ``stray_processes(where, ray_tmp)`` (or of ``seen``, found earlier)
    runs, after a grace for Ray's last helpers, which exit a little after their service;
    what is left is killed, and named in the failure."""
    deadline = time.monotonic() + STRAY_GRACE
    strays = stray_processes(where, ray_tmp) + (seen or [])
    while strays and time.monotonic() < deadline:
        time.sleep(0.2)
        strays = stray_processes(where, ray_tmp)
    if strays:
        kill_strays(where, ray_tmp)
    assert not strays, f"{what} left processes running: {strays}"


def run_gl(root: Path, *args: str, timeout: float = 90, check_clean: bool = True,
           ray_tmp: str | None = None, jobs_may_run: bool = False,
           env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``ganga-like ARGS`` with GANGA_LIKE_DIR=root. With ``check_clean`` (for a
    test that is done with the root) the root's service is stopped afterwards and
    nothing of it may remain (see :func:`finish_root`)."""
    env = gl_env(root, ray_tmp)
    env.update(env_extra or {})
    try:
        return subprocess.run([*GANGA_LIKE, *args], env=env, cwd=str(REPO), text=True,
                              capture_output=True, timeout=timeout)
    finally:
        if check_clean:
            finish_root(root, jobs_may_run, what=f"ganga-like {' '.join(args)}")


def assert_nothing_runs(root: Path) -> None:
    """For a root whose command was refused before any service served it (bad usage, a
    refused start): no process of the root or of its Ray directory runs. Checked in this
    process: :func:`finish_root` would start a ``service stop`` command to stop nothing."""
    ray_tmp = ray_dir_for(root)
    try:
        assert_no_strays(root, ray_tmp, f"a refused command on {root}")
    finally:
        shutil.rmtree(_RAY_DIRS.pop(str(root), ray_tmp), ignore_errors=True)


def assert_nothing_started(root: Path) -> None:
    """Bad usage: no service was started for the root (it takes the root's lock at once)
    and nothing of the root runs."""
    assert not (root / "service.lock").exists(), f"a service was started for {root}"
    assert_nothing_runs(root)


STARTING = "ganga-like: starting the service for "  # the one line a first use adds


def one_line(text: str) -> str:
    """The single line of an error, beside the service's start-up line if any."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(STARTING)]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]


# -- commands that never start Ray ----------------------------------------------------------

def test_version():
    result = subprocess.run([*GANGA_LIKE, "--version"], text=True, capture_output=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("ganga_like ")


@pytest.fixture(scope="class")
def empty_root(tmp_path_factory):
    """For TestAnEmptyRepository: a root and the result of its first command (``jobs``,
    which starts its service)."""
    root = tmp_path_factory.mktemp("empty") / "gl"
    try:
        yield root, run_gl(root, "jobs", check_clean=False)
    finally:
        finish_root(root, what="the empty repository's service")


class TestAnEmptyRepository:
    """Questions to a repository nobody adds anything to, on ONE root and its one service
    (the first command, ``jobs``, starts it; the others find it running). None of these
    commands writes, so no test can see what another did; the service is stopped, and
    nothing of it may be left, after the last of them."""

    def test_jobs_on_an_empty_repository(self, empty_root):
        _root, result = empty_root
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0].split()[:2] == ["fqid", "status"]
        assert result.stdout.rstrip().endswith("0 jobs")
        # The first use starts the service: if that takes over a second, one line says so
        # while it waits (a quicker start says nothing); nothing else.
        assert len(result.stderr.splitlines()) <= 1 and all(
            line.startswith(STARTING) for line in result.stderr.splitlines())

    def test_jobs_json_parses(self, empty_root):
        result = run_gl(empty_root[0], "jobs", "--json", check_clean=False)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == []

    def test_show_unknown_job_is_one_line_and_exit_1(self, empty_root):
        result = run_gl(empty_root[0], "show", "99", check_clean=False)
        assert result.returncode == 1
        line = one_line(result.stderr)
        assert line.startswith("ganga-like: ") and "99" in line
        assert result.stdout == ""


def test_the_demo_runs_a_real_job_and_stops_the_service_it_started(tmp_path):
    root = tmp_path / "gl"
    result = run_gl(root, "demo", "--subjobs", "20", check_clean=False)
    try:
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert any(re.fullmatch(r"job 0: completed in [0-9.]+ s", line) for line in lines), result.stdout
        assert "subjob 0: sum of i^2 for i < 1000 = 332833500" in result.stdout
        assert lines[-1] == "stopped the service the demo started (the next command starts it again)"
        assert not (root / "service.json").exists()  # the service it started is gone
        assert not (root / "repository" / "jobs.fs.tmp").exists()  # its scratch file went with it
        again = run_gl(root, "jobs", "--json", check_clean=False)
        assert json.loads(again.stdout)[0]["subjobs"] == {"completed": 20}
    finally:
        finish_root(root)


@pytest.mark.parametrize("args,names", [
    (["frobnicate"], ["jobs", "show", "service"]),
    (["wait"], ["ID"]),
    (["jobs", "--limit", "many"], ["--limit"]),
    (["jobs", "--limit", "0"], ["1 or more"]),
    (["jobs", "--status", "done"], ["completed", "failed", "killed"]),
    (["jobs", "--all", "--limit", "3"], ["--all"]),
    (["show"], ["id"]),
    (["peek", "1", "--lines", "0"], ["1 or more"]),
    (["wait", "1", "--timeout", "-1"], ["0 or more"]),
    (["service"], ["start", "stop", "status", "log"]),
    (["service", "restart"], ["start", "stop", "status", "log"]),
    (["service", "stop", "--listen", "x"], ["service stop", "--json"]),
    (["jobs", "--frob"], ["--status", "--limit", "--all", "--json"]),
    (["jobs", "--since", "yesterday"], ["--since", "'yesterday'", "2h", "2026-12-06"]),
    (["run", "no-such-script.py"], ["'no-such-script.py' does not exist", "Python script"]),
    (["run", "/"], ["'/' is a directory", "Python script"]),
])
def test_bad_usage_exits_2(tmp_path, args, names):
    """What was wrong and the valid choices, in one line; nothing on stdout; nothing started."""
    result = run_gl(tmp_path / "gl", *args, check_clean=False)
    assert_nothing_started(tmp_path / "gl")
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = one_line(result.stderr)  # what was wrong, not the whole usage
    assert line.startswith("ganga-like") and "--help" in line
    assert all(name in line for name in names), line
    assert result.stdout == ""


@pytest.mark.parametrize("home", ["", "relative"])
@pytest.mark.parametrize("args", [["jobs"], ["run", "script.py"]])
def test_a_home_set_but_empty_or_relative_is_one_line_and_makes_nothing(tmp_path, home, args):
    """The default root is ~/gangalike: with HOME empty it would be /gangalike, with HOME
    relative a directory under wherever the command runs."""
    (tmp_path / "script.py").write_text("print(jobs)\n")
    env = {k: v for k, v in gl_env(tmp_path / "unused").items() if k != "GANGA_LIKE_DIR"}
    env["HOME"] = home
    at_slash = os.path.exists("/gangalike")
    result = subprocess.run([*GANGA_LIKE, *args], env=env, cwd=str(tmp_path), text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    line = one_line(result.stderr)
    assert f"HOME is {home!r}" in line and "GANGA_LIKE_DIR" in line, line
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.py"]
    assert os.path.exists("/gangalike") == at_slash


def _hints(text: str) -> list[tuple[str, str]]:
    """(command words, --flag) for every `ganga-like WORDS ... --flag` in a text."""
    found = []
    for match in re.finditer(r"ganga-like((?: +[^\s`#|\"'();]+)+)", text):
        words = match.group(1).split()
        flags = [w.strip("[]").split("=")[0].rstrip(",.:") for w in words
                 if w.strip("[").startswith("--") and w.strip("[]") != "--"]  # (-- ends options)
        names = [w for w in words if re.fullmatch(r"[a-z]+", w)]
        found += [(" ".join(names[:2]), flag) for flag in flags]
    return found


def test_every_flag_a_hint_or_page_names_exists():
    from ganga_like.cli import build_parser
    from ganga_like.cli.parser import subcommand_parsers

    parser = build_parser()
    commands = subcommand_parsers(parser)
    texts = {str(p.relative_to(REPO)): p.read_text() for p in
             [*(REPO / "ganga_like").rglob("*.py"), REPO / "README.md", *(REPO / "docs").glob("*.md")]}
    wrong, checked = [], 0
    for where, text in texts.items():
        for words, flag in _hints(text):
            target = commands.get(words) or commands.get(words.split(" ")[0]) if words else parser
            if target is None:
                continue  # prose: "ganga-like command", "ganga-like: ..."
            options = {o for a in target._actions for o in a.option_strings}
            checked += 1
            if flag not in options:
                wrong.append(f"{where}: ganga-like {words} {flag}")
    assert checked > 20 and not wrong, wrong


@pytest.mark.parametrize("verb", ["remove", "kill"])
def test_destroying_commands_refuse_relative_ids(tmp_path, verb):
    result = run_gl(tmp_path / "gl", verb, "--", "-5", check_clean=False)
    assert_nothing_started(tmp_path / "gl")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "relative ids" in one_line(result.stderr)


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
    left running by the preparing script, as a user's script would). The service the
    script started serves every test of the module; it is stopped at the end."""
    root = tmp_path_factory.mktemp("cli") / "gl"
    script = root.parent / "prepare.py"
    script.write_text(PREPARE)
    try:
        result = run_gl(root, "run", str(script), check_clean=False)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "prepared 0 1 2 3 completed failed running running" in result.stdout, result.stdout
        yield root
    finally:
        finish_root(root, what="the prepared repository's service")


def _show(root: Path, fqid: str) -> dict:
    result = run_gl(root, "show", fqid, "--json", check_clean=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_jobs_footer_counts_what_is_shown(prepared):
    result = run_gl(prepared, "jobs", "--status", "failed,killed", check_clean=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines[2:-1]]
    assert [r.split()[0] for r in rows] == ["1"]
    assert lines[-1] == "1 of 4 jobs with status failed,killed"
    newest = run_gl(prepared, "jobs", "--limit", "2", check_clean=False).stdout.splitlines()
    assert [r.split()[0] for r in newest[2:-1]] == ["2", "3"]
    assert newest[-1] == "the newest 2 of 4 jobs (--limit N or --all for more)"


def _columns(lines: list[str]) -> list[dict[str, str]]:
    """The rows of a table, each a dict by column title (titles are single words; each
    column starts where its title does)."""
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    titles = header.split()
    bounds = list(zip(starts, starts[1:] + [None], strict=True))
    return [{t: line[a:b].strip() for t, (a, b) in zip(titles, bounds, strict=True)}
            for line in lines[2:]]


def test_jobs_by_name_since_and_with_their_run_time(prepared):
    """What HTCondor and Slurm users look for (issue 20, point 13): a name glob, jobs
    created since a time, and how long each ran or runs."""
    result = run_gl(prepared, "jobs", "--name", "sleep*", check_clean=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "2 of 4 jobs named 'sleep*'"
    rows = _columns(lines[:-1])
    assert [r["fqid"] for r in rows] == ["2", "3"] and {r["name"] for r in rows} == {"sleeper"}
    assert all(re.fullmatch(r"\d+:\d\d", r["runtime"]) for r in rows), rows  # running: so far
    every = _columns(run_gl(prepared, "jobs", "--since", "1h", check_clean=False).stdout.splitlines()[:-1])
    assert [r["fqid"] for r in every] == ["0", "1", "2", "3"]
    assert every[1]["subjobs"] == "failed:1 completed:1" and every[0]["runtime"] == "0:00"
    later = run_gl(prepared, "jobs", "--since", "2099-01-01", check_clean=False).stdout
    assert later.splitlines()[-1] == "0 of 4 jobs created since 2099-01-01"
    data = json.loads(run_gl(prepared, "jobs", "--name", "done", "--json", check_clean=False).stdout)
    assert data[0]["runtime_s"] >= 0 and data[0]["created"].startswith("20")


def test_show_a_master_once(prepared):
    result = run_gl(prepared, "show", "1", check_clean=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == "job 1 'mixed': failed"
    assert out.count("fqid") == 1 and out.count("subjobs      2: ") == 1   # one table, one count
    rows = _columns(out.split("subjobs (all 2):\n")[1].split("\n\n")[0].splitlines())
    assert rows[1] == {"fqid": "1.1", "status": "failed", "exit": "3", "detail": rows[1]["detail"],
                       "args": "-c 'echo broken >&2; exit 3'", "reason": rows[1]["reason"]}
    assert "3" in rows[1]["reason"]                                           # its reason
    data = _show(prepared, "1")
    assert [s["fqid"] for s in data["subjob_list"]] == ["1.0", "1.1"]
    assert data["subjob_list"][1]["exit_code"] == 3
    assert data["description"]["application"]["exe"] == "/bin/sh"
    failed = json.loads(run_gl(prepared, "show", "1", "--status", "failed", "--json",
                               check_clean=False).stdout)
    assert [s["fqid"] for s in failed["subjob_list"]] == ["1.1"]


def test_peek_json_and_a_wrong_file(prepared):
    result = run_gl(prepared, "peek", "1.1", "--file", "stderr", "--json", check_clean=False)
    assert json.loads(result.stdout) == {"fqid": "1.1", "file": "stderr", "lines": 20,
                                         "text": "broken\n"}
    wrong = run_gl(prepared, "peek", "1.1", "--file", "nope", check_clean=False)
    assert wrong.returncode == 2 and "stderr, stdout" in one_line(wrong.stderr)


def test_wait_says_what_it_waited_for(prepared):
    result = run_gl(prepared, "wait", "0", "1", check_clean=False)
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == ["0: completed", "1: failed (subjobs failed:1 completed:1)"]
    data = json.loads(run_gl(prepared, "wait", "0", "--json", check_clean=False).stdout)
    assert data["jobs"][0]["status"] == "completed" and data["timed_out"] is False


def test_pack_while_jobs_run_says_what_it_did_and_keeps_every_job(prepared):
    def listed() -> list[dict]:
        rows = json.loads(run_gl(prepared, "jobs", "--json", check_clean=False).stdout)
        return [{k: v for k, v in row.items() if k != "runtime_s"} for row in rows]

    before = listed()
    result = run_gl(prepared, "pack", check_clean=False)
    assert result.returncode == 0, result.stderr
    path = prepared / "repository" / "jobs.fs"
    assert re.fullmatch(rf"packed {re.escape(str(path))}: [0-9.]+ [KMG]?B -> [0-9.]+ [KMG]?B in [0-9.]+ s "
                        r"\(only the current state kept\)", result.stdout.strip()), result.stdout
    done = json.loads(run_gl(prepared, "pack", "--json", check_clean=False).stdout)
    assert done["after"] == path.stat().st_size and done["after"] <= done["before"]
    assert listed() == before
    assert not (prepared / "repository" / "jobs.fs.old").exists()


def test_jobs_lists_the_prepared_jobs(prepared):
    result = run_gl(prepared, "jobs", "--json", check_clean=False)
    assert result.returncode == 0, result.stderr
    rows = {row["fqid"]: row for row in json.loads(result.stdout)}
    assert rows["1"]["subjobs"] == {"completed": 1, "failed": 1}
    assert rows["0"]["status"] == "completed" and rows["2"]["status"] == "running"


def test_wait_exit_3_when_a_job_failed(prepared):
    result = run_gl(prepared, "wait", "1", check_clean=False)
    assert result.returncode == 3, result.stderr
    assert run_gl(prepared, "wait", "0", check_clean=False).returncode == 0


def test_wait_exit_4_on_timeout(prepared):
    started = time.monotonic()
    result = run_gl(prepared, "wait", "2", "--timeout", "1", check_clean=False)
    assert result.returncode == 4, result.stderr
    line = one_line(result.stderr.replace("\r", "\n").splitlines()[-1])
    assert "timed out" in line and "2" in line
    assert result.stdout == "2: running\n"  # where it was when the wait gave up
    assert time.monotonic() - started < 60


def test_kill_a_running_job(prepared):
    result = run_gl(prepared, "kill", "2", check_clean=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2: killed"
    shown = _show(prepared, "2")
    assert shown["status"] == "killed" and shown["history"][-1]["to"] == "killed"
    # Killing it again is refused: nothing is running.
    again = run_gl(prepared, "kill", "2", check_clean=False)
    assert again.returncode == 1 and "nothing to kill" in one_line(again.stderr)


def test_resubmit_the_failed_subjobs(prepared):
    before = _show(prepared, "1.1")
    result = run_gl(prepared, "resubmit", "1", check_clean=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1: ")
    after = _show(prepared, "1.1")
    notes = [entry["note"] for entry in after["history"]]
    assert len(after["history"]) > len(before["history"]) and "resubmit()" in notes
    # The history names the verb's cause: numbered in the repository, and who asked.
    cause = next(e["cause"] for e in after["history"] if e["note"] == "resubmit()")
    assert re.fullmatch(r"resubmit #\d+ from ganga-like resubmit, pid \d+", cause), cause
    # The completed subjob was left alone.
    assert _show(prepared, "1.0")["status"] == "completed"


def test_remove_kills_a_running_job_first(prepared):
    result = run_gl(prepared, "remove", "3", check_clean=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3: removed"
    missing = run_gl(prepared, "show", "3", check_clean=False)
    assert missing.returncode == 1 and "no job" in one_line(missing.stderr)


def test_remove_a_finished_job(prepared):
    result = run_gl(prepared, "remove", "0", "--json", check_clean=False)
    assert result.returncode == 0 and json.loads(result.stdout) == [{"fqid": "0", "removed": True}]
    listed = json.loads(run_gl(prepared, "jobs", "--json", check_clean=False).stdout)
    assert "0" not in {row["fqid"] for row in listed}


def test_leaks_json_after_everything(prepared):
    result = run_gl(prepared, "leaks", "--json", check_clean=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    # Killed, removed and finished: nothing of this repository runs any more.
    def payloads() -> list[str]:  # the service itself runs on, with nothing to do
        return [p for p in stray_processes(prepared, "") if "ganga_like.service.main" not in p]

    deadline = time.monotonic() + 5
    while payloads() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert payloads() == []


def test_hosts_lists_this_machine_once_and_refuses_an_unknown_name(prepared):
    """The service's own Ray is one node: one host, named by its node id, Ready once
    verified; ``hosts NAME`` shows it alone, an unknown name is one line."""
    result = run_gl(prepared, "hosts", "--json", check_clean=False)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert set(row) >= {"name", "labels", "status", "protection", "dirty", "subjob", "last_check",
                        "last_result"}
    assert row["status"] == "Ready" and row["protection"] == "No protection" and row["subjob"] == ""
    shown = run_gl(prepared, "hosts", row["name"], check_clean=False)
    assert shown.returncode == 0 and shown.stdout.splitlines()[0].split()[:2] == ["host", "status"]
    assert f"{row['name']}  Ready" in shown.stdout and shown.stdout.rstrip().endswith("1 host")
    bad = run_gl(prepared, "hosts", "nosuch", check_clean=False)
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.strip() == ("ganga-like: hosts().name = 'nosuch' is not valid: expected the name "
                                  f"of a host of the cluster: {row['name']}")


WAITERS = r'''
import time
j = Job(name='waiters', application=Executable(exe='/bin/sleep'),
        backend=Local(concurrency=1), splitter=ArgSplitter(args=[['600']] * 4))
j.submit()
deadline = time.time() + 30
while j.subjob_counts.get('running') != 1 and time.time() < deadline:
    time.sleep(0.1)
print(j.id, j.subjob_counts)
print(j.why())
'''


def test_why_groups_the_waiting_subjobs_by_their_backends_reason(prepared):
    """Last in the module: it leaves a job of its own, removed at the end."""
    script = prepared.parent / "waiters.py"
    script.write_text(WAITERS)
    result = run_gl(prepared, "run", str(script), check_clean=False)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[0]
    try:
        report = json.loads(run_gl(prepared, "why", job_id, "--json", check_clean=False).stdout)
        assert report["status"] == "running"
        assert report["summary"] == f"{job_id} is running: 3 of 4 subjobs wait; 1 running"
        [reason] = report["reasons"]
        subjobs = _show(prepared, job_id)["subjob_list"]  # each subjob's status and backend's word
        waiting = [s["fqid"] for s in subjobs if s["status"] == "submitted"]
        assert reason["subjobs"] == waiting and reason["count"] == 3
        shown = next(s for s in subjobs if s["fqid"] == waiting[0])  # why groups by what the backend said
        assert (reason["code"], reason["note"]) == (shown["backend_detail"], shown["backend_note"])
        assert reason["code"] and reason["note"]
        # The script's j.why() printed the same lines as the command.
        text = run_gl(prepared, "why", job_id, check_clean=False).stdout
        assert text.splitlines()[0] == report["summary"] and text.strip() in result.stdout
        assert f"  3 subjobs ({waiting[0]}-{waiting[-1]}): {reason['code']}: {reason['note']}" in text
        # A subjob: one line, waiting or what it does.
        one = run_gl(prepared, "why", waiting[0], check_clean=False).stdout
        assert one.startswith(f"{waiting[0]} waits (submitted since ") and reason["note"] in one
        running = next(s["fqid"] for s in subjobs if s["fqid"] not in waiting)
        assert run_gl(prepared, "why", running, check_clean=False).stdout.startswith(
            f"{running} is running on ")
        bad = run_gl(prepared, "why", "999", check_clean=False)
        assert bad.returncode == 1 and "no job" in one_line(bad.stderr)
    finally:
        assert run_gl(prepared, "remove", job_id, check_clean=False).returncode == 0
    after = run_gl(prepared, "why", f"{job_id}", check_clean=False)
    assert after.returncode == 1
