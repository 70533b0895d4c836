"""The service and its clients, as users meet them: real processes on one root.

Every face is a client of the root's one service (ZEO over a unix socket for the
database, the control socket for verbs). These tests start shells, scripts and
commands as separate processes, kill them and the service with SIGKILL, and check
after each that nothing is stuck, lost or left running.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from ganga_like.service import reaper
from tests.test_cli import GANGA_LIKE, REPO, assert_nothing_runs, finish_root, gl_env, run_gl


def client(root: Path, code: str, timeout: float = 120, env_extra: dict | None = None,
           ) -> subprocess.CompletedProcess:
    """A Python client (a script with the GPI) in its own process."""
    env = gl_env(root)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", "from ganga_like.gpi import *\n" + textwrap.dedent(code)],
                          env=env, cwd=str(REPO), text=True, capture_output=True, timeout=timeout)


def shell(root: Path, env_extra: dict | None = None) -> subprocess.Popen:
    """A long-lived client reading Python lines on stdin (a stand-in for IPython),
    answering each with one line of output."""
    env = gl_env(root)
    env.update(env_extra or {})
    loop = textwrap.dedent("""
        import sys, traceback
        from ganga_like.gpi import *
        print('ready', flush=True)
        for line in sys.stdin:
            try:
                print(repr(eval(line)) if not line.startswith('!') else exec(line[1:]), flush=True)
            except Exception as exc:
                print('ERROR', type(exc).__name__, str(exc).splitlines()[0], flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", loop], env=env, cwd=str(REPO), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def ask(proc: subprocess.Popen, line: str) -> str:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def service_pid(root: Path) -> int:
    return int((root / "service.lock").read_text())


def service_status(root: Path) -> dict:
    """What ``service status --json`` shows, asked over the control socket from this
    process (a millisecond, where the command is a process of its own)."""
    from ganga_like.channel.paths import ServicePaths
    from ganga_like.client.link import Link

    paths = ServicePaths(str(root))
    return dict(Link(paths.root, unix_path=paths.control_socket).call("status")[0])



def waits_to_completed(root: Path, job_id: str, timeout: float = 240) -> str:
    """A client waits for job ``job_id`` (through the service it finds or starts), which
    must complete; what it printed (the status, then the subjob counts)."""
    result = client(root, f"""
        j = jobs({job_id})
        print(j.wait(timeout={timeout}).value, j.subjob_counts)
    """, timeout=timeout + 60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "completed", result.stdout
    return result.stdout

def wait_for(predicate, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def jobs_json(root: Path) -> dict:
    result = run_gl(root, "jobs", "--json", "--all", check_clean=False)
    assert result.returncode == 0, result.stderr
    return {row["fqid"]: row for row in json.loads(result.stdout)}


def nothing_runs_for(root: Path, job_id: str, grace: float = 5.0) -> None:
    """No process works in that job's workspace any more (what stopping the root and
    finding nothing there checks, for one job of a root whose service runs on)."""
    workspace = str(root / "workspace" / job_id)

    def payloads() -> list[str]:
        found = []
        for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
            cwd = proc.info["cwd"] or ""
            if cwd == workspace or cwd.startswith(workspace + os.sep):
                found.append(f"{proc.info['pid']}: {' '.join(proc.info['cmdline'] or ())[:120]}")
        return found

    deadline = time.monotonic() + grace
    while payloads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert payloads() == [], f"job {job_id} left processes running: {payloads()}"


# -- one shared root: the tests that leave the service up, and the faults that kill it --------

@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """ONE root (and whichever service runs for it) for the tests of this module that do
    not need a service of their own: each makes its own jobs and reads only those (by the
    id it was given, never by position), and leaves none of them active, so what one left
    cannot change what another sees. The SIGKILL tests here kill the service at a point of
    their own job's verb; the next client starts a new one, which recovers, as on a root of
    their own. A test that ends its own job checks that nothing of it runs any more
    (nothing_runs_for); at the end the service is stopped and nothing of the root, its
    services' Ray included, may be left."""
    root = tmp_path_factory.mktemp("svc") / "gl"
    yield root
    finish_root(root, what="the shared root's service")


def test_two_shells_and_the_command_line_at_once(root):
    first = shell(root)
    second = shell(root)
    try:
        ask(first, "!j = Job(name='long', application=Executable(exe='/bin/sleep', args=['300']))")
        ask(first, "!j.submit()")
        job_id = ask(first, "j.id")
        wait_for(lambda: ask(first, "j.status.value") == "'running'", what="the job to run")
        # The second shell sees it and kills it; the first shell sees 'killed' (not failed).
        assert ask(second, f"jobs({job_id}).status.value") == "'running'"
        assert ask(second, f"jobs({job_id}).kill()") == "None"
        wait_for(lambda: ask(first, "j.status.value") == "'killed'", what="the first shell to see it")
        assert jobs_json(root)[job_id]["status"] == "killed"
        history = json.loads(run_gl(root, "show", job_id, "--json", check_clean=False).stdout)["history"]
        assert history[-1]["to"] == "killed", history[-1]
        # Both shells are clients of the same service; the CLI too.
        status = run_gl(root, "service", "status", "--json", check_clean=False)
        info = json.loads(status.stdout)
        assert info["clients"] >= 2 and info["ready"], info
    finally:
        for proc in (first, second):
            proc.stdin.close()
            proc.wait(timeout=30)


TAGS = "abcdefgh"


def test_scripts_making_jobs_at_once_store_every_job_whole(root):
    """Eight scripts make jobs at the same moment: their registrations conflict (the id
    allocator), and a retried one stores the user's job whole. Through the service's
    database server the conflict comes at the vote, which left the job an empty ghost
    (POSKeyError on its next store: model/new_objects.py); and the ids, taken in a
    write of their own, tried again until each script has its own (the default attempts
    ran out for two scripts of eight)."""
    assert client(root, "pass").returncode == 0  # the service runs before they start
    code = textwrap.dedent("""
        from ganga_like.gpi import *
        made = [Job(name=f'{tag}{i}', application=Executable(exe='/bin/echo', args=[tag, str(i)])).id
                for i in range(30)]
        print(' '.join(map(str, made)))
    """)
    scripts = [subprocess.Popen([sys.executable, "-c", f"tag = {tag!r}\n" + code], env=gl_env(root),
                                cwd=str(REPO), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for tag in TAGS]
    made = {}
    for tag, script in zip(TAGS, scripts, strict=True):
        out, err = script.communicate(timeout=120)
        assert script.returncode == 0, err[-3000:]
        made[tag] = out.split()
    ids = [job_id for tag in made for job_id in made[tag]]
    assert len(set(ids)) == 30 * len(TAGS), made
    check = client(root, f"""
        for tag, ids in {made!r}.items():
            for i, job_id in enumerate(ids):
                j = jobs(int(job_id))
                got = (j.name, list(j.application.args))
                assert got == (f'{{tag}}{{i}}', [tag, str(i)]), (job_id, got)
        print('whole')
    """)
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.split() == ["whole"]


def test_a_script_that_exits_while_its_job_runs(root):
    result = client(root, """
        j = Job(name='left-behind', application=Executable(exe='/bin/sh'),
                splitter=ArgSplitter(args=[['-c', f'sleep 1; echo part {i}'] for i in range(3)]),
                postprocessors=[TextMerger(files=['stdout'])])
        j.submit()
        print('submitted', j.id, j.status.value)
    """)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[1]
    assert result.stdout.split()[2] in ("submitted", "running")
    # No client is open: the service monitors, postprocesses and records on its own.
    wait_for(lambda: jobs_json(root)[job_id]["status"] == "completed", what="completion")
    merged = Path(json.loads(run_gl(root, "show", job_id, "--json", check_clean=False).stdout)["workdir"])
    text = (merged / "output" / "stdout").read_text() if (merged / "output" / "stdout").exists() \
        else (merged / "stdout").read_text()
    assert all(f"part {i}" in text for i in range(3)), text


def test_reading_clients_do_not_import_ray_and_see_the_service_commits(root):
    result = client(root, """
        import sys, time
        n = len(jobs)
        listing = repr(jobs)
        done = jobs.select(status='completed')
        assert 'ray' not in sys.modules, 'a reading client imported Ray'
        j = Job(application=Executable(exe='/bin/sh', args=['-c', 'sleep 0.5']))
        j.submit()
        deadline = time.time() + 60
        while j.status != 'completed':   # a Ganga-style polling loop
            assert time.time() < deadline, j.status
            time.sleep(0.1)
        print('ok', n, 'ray' in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "ok" and result.stdout.split()[2] == "False"


def test_payloads_get_the_submitters_environment_unless_the_job_opts_out(root):
    result = client(root, """
        a = Job(application=Executable(exe='/bin/sh', args=['-c', 'echo "[$GL_TEST_MARK]"']))
        b = Job(application=Executable(exe='/bin/sh', args=['-c', 'echo "[$GL_TEST_MARK]"']),
                env_from='backend')
        a.submit(); b.submit()
        a.wait(); b.wait()
        print(a.peek().strip(), b.peek().strip())
    """, env_extra={"GL_TEST_MARK": "from-the-client"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[from-the-client]", "[]"], result.stdout


def test_bad_env_from_is_one_line(root):
    result = client(root, "Job(env_from='mine')")
    assert result.returncode == 1
    assert "env_from" in result.stderr.splitlines()[-1] and "'submitter' or 'backend'" in result.stderr


def test_a_second_start_succeeds_saying_it_runs_already(root):
    # As `systemctl start`: the service asked for runs, so the start succeeded.
    run_gl(root, "jobs", check_clean=False)  # the service runs
    again = run_gl(root, "service", "start", check_clean=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"already running: service for {root}: ready "
                                   f"(pid {service_pid(root)}, "), again.stdout
    # One it cannot be: asked for what the running one does not do, one line saying who.
    wider = run_gl(root, "service", "start", "--ray-open", check_clean=False)
    assert wider.returncode == 1
    line = wider.stderr.strip()
    assert len(line.splitlines()) == 1 and f"pid {service_pid(root)}, without --ray-open" in line, line


def test_files_and_sockets_are_private(root):
    run_gl(root, "jobs", check_clean=False)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    for name in ("zeo.sock", "service.sock", "service.log", "service.lock", "repository/jobs.fs"):
        mode = stat.S_IMODE(os.stat(root / name).st_mode)
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}"


# -- faults on the shared root: SIGKILL of the service or a client during a verb of a job of its own

@pytest.fixture(scope="module")
def killed_while_busy(root):
    """ONE SIGKILL of the service for two cases that need the same moment (the service
    busy, no verb of its own under way) and each read only their own job: a script has
    submitted 200 subjobs and exited (most of them are still queued with the actor, two
    run at a time), and another script waits in ``wait()`` for a job of its own. Each
    case's test checks its own job; one kill spares a second service's start."""
    script = root.parent / "wait.py"
    script.write_text("j = Job(application=Executable(exe='/bin/sleep', args=['60']))\n"
                      "j.submit()\nprint('waiting', j.id, flush=True)\nj.wait()\n")
    waiting = subprocess.Popen(
        [*GANGA_LIKE, "run", str(script)], env=gl_env(root), cwd=str(REPO), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    said, waiter_id = (waiting.stdout.readline().split() + ["", ""])[:2]
    assert said == "waiting" and waiter_id.isdigit(), waiting.stderr.read()
    submitted = client(root, """
        j = Job(application=Executable(exe='/bin/sh'),
                splitter=ArgSplitter(args=[['-c', f'sleep 0.0{i % 5}; echo {i}'] for i in range(200)]))
        j.submit()
        print(j.id)
    """)
    assert submitted.returncode == 0, submitted.stderr
    old_pid = service_pid(root)
    old_ray = json.loads((root / "service.json").read_text())["ray_dir"]
    os.kill(old_pid, signal.SIGKILL)
    try:
        yield {"old_pid": old_pid, "old_ray": old_ray, "job_id": submitted.stdout.strip(),
               "waiting": waiting, "waiter_id": waiter_id}
    finally:
        if waiting.poll() is None:
            waiting.kill()
        waiting.communicate(timeout=30)


def test_kill_9_of_the_service_during_200_subjobs_loses_nothing(root, killed_while_busy):
    old_pid, old_ray, job_id = (killed_while_busy[k] for k in ("old_pid", "old_ray", "job_id"))
    wait_for(lambda: not psutil.pid_exists(old_pid) or
             psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE, what="the service to die")
    # Its guardian ends the dead service's Ray at once, before any next start.
    wait_for(lambda: not reaper.processes_using(old_ray),
             timeout=15, what="the dead service's Ray processes to be ended by its guardian")
    wait_for(lambda: not os.path.exists(old_ray), timeout=10,
             what="the guardian to remove its Ray directory")
    # The next client starts a new service, which recovers before it answers.
    waits_to_completed(root, job_id, timeout=120)
    assert service_pid(root) != old_pid
    # Nothing of the dead service's Ray survives the new start.
    assert reaper.processes_using(old_ray) == []
    outputs = sorted(int((root / "workspace" / job_id / str(i) / "output" / "stdout").read_text())
                     for i in range(200))
    assert outputs == list(range(200))
    nothing_runs_for(root, job_id)


def test_a_script_in_wait_when_its_service_dies_waits_on_with_the_next(root, killed_while_busy):
    """``wait()`` changes nothing, so a script in it when its service is SIGKILLed asks
    the next service again: it failed with "stopped during 'wait'". (A verb that changes
    jobs gets that one line instead: ``test_kill_9_of_the_service_during_a_submit``.)"""
    waiting, job_id = killed_while_busy["waiting"], killed_while_busy["waiter_id"]
    # The next service adopts the job, and the script waits on: a kill through it ends
    # the job, and the script's wait returns.
    assert run_gl(root, "kill", job_id, check_clean=False).returncode == 0
    assert jobs_json(root)[job_id]["status"] == "killed"
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "stopped during" not in err and "Traceback" not in err, err
    nothing_runs_for(root, job_id)


def test_a_script_in_wait_when_its_service_is_stopped_waits_on_with_the_next(root):
    """``service stop`` while a script waits: the stop lets the wait end before it closes
    the service's database, and the script asks the next service, which adopts the job.
    The wait read on in the closed database, and the script got "AttributeError: ..."."""
    log = root / "service.log"
    seen = log.stat().st_size if log.exists() else 0
    script = root.parent / "wait-stop.py"
    script.write_text("j = Job(application=Executable(exe='/bin/sleep', args=['4']))\n"
                      "j.submit()\nprint('waiting', j.id, flush=True)\n"
                      "print(j.wait(timeout=120).value)\n")
    waiting = subprocess.Popen(
        [*GANGA_LIKE, "run", str(script)], env=gl_env(root), cwd=str(REPO), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        said, job_id = (waiting.stdout.readline().split() + ["", ""])[:2]
        assert said == "waiting" and job_id.isdigit(), waiting.stderr.read()
        first = service_pid(root)
        time.sleep(0.5)  # in its wait, on the service
        assert run_gl(root, "service", "stop", check_clean=False).returncode == 0
        out, err = waiting.communicate(timeout=120)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, err
    assert out.split()[-1] == "completed", (out, err)
    assert "Traceback" not in err and "Error" not in err, err
    assert service_pid(root) != first
    with open(log) as handle:
        handle.seek(seen)
        told = handle.read()
    assert "Traceback" not in told and "request wait failed" not in told, told[-3000:]


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_kill_9_of_a_client_during_submit_loses_nothing(root, delay):
    """SIGKILL a script at a point of its submit of 300 subjobs (before, during or after
    the request): what it committed stays, the service finishes what it was asked,
    and nothing is left in 'submitting'."""
    script = root.parent / f"submit-{delay}.py"
    script.write_text(textwrap.dedent("""
        import sys
        from ganga_like.gpi import *
        j = Job(name='killed-client', application=Executable(exe='/bin/true'),
                splitter=ArgSplitter(args=[[str(i)] for i in range(300)]))
        print(j.id, flush=True)
        j.submit()
        print('submitted', flush=True)
        import time; time.sleep(60)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], env=gl_env(root), cwd=str(REPO),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    job_id = proc.stdout.readline().strip()
    assert job_id.isdigit(), proc.stderr.read()
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=30)
    # The job is either untouched (new) or submitted in full; then it completes.
    result = client(root, f"""
        import time
        j = jobs({job_id})
        deadline = time.time() + 60
        while j.status.value == 'submitting' and time.time() < deadline:
            time.sleep(0.1)
        if j.status.value != 'new':
            j.wait(timeout=120)
        print(j.status.value, j.subjob_counts)
    """)
    assert result.returncode == 0, result.stderr
    status = result.stdout.split()[0]
    assert status in ("new", "completed"), result.stdout


def test_an_open_shell_outlives_its_service(root):
    """The service stops (or dies) while a shell stays open: the shell's next verb starts
    a new service and goes on, as a first use would."""
    sh = shell(root)
    try:
        ask(sh, "!a = Job(application=Executable(exe='/bin/echo', args=['one']))")
        ask(sh, "!a.submit(); a.wait(timeout=60)")
        first = service_pid(root)
        assert run_gl(root, "service", "stop", check_clean=False).returncode == 0
        # At once, before the shell's database connection has noticed the stop:
        assert ask(sh, "!b = Job(application=Executable(exe='/bin/echo', args=['two']))") == "None"
        next_id = int(ask(sh, "a.id")) + 1
        assert ask(sh, "b.submit()") == f"job {next_id} submitted"  # Ganga's 1, shown as one line
        assert ask(sh, "b.id") == str(next_id)
        assert ask(sh, "b.wait(timeout=60).value") == "'completed'"
        assert ask(sh, "b.peek().strip()") == "'two'"
        assert service_pid(root) != first
        assert ask(sh, "a.status.value") == "'completed'"
    finally:
        sh.stdin.close()
        sh.wait(timeout=30)


@pytest.mark.parametrize("delay", [0.05, 1.2])  # more points: make soak
def test_kill_9_of_the_service_during_a_submit(root, tmp_path, delay):
    """SIGKILL the service at a point of a client's submit of 200 subjobs: the client
    gets one line; the next service recovers every subjob to a true state (none stays
    'submitting'); what was rolled back to 'new' submits again; all end completed."""
    assert run_gl(root, "service", "start", check_clean=False).returncode == 0  # or runs already
    wait_for(lambda: service_status(root)["ray_address"], timeout=60, what="the service's Ray")
    script = tmp_path / "submit.py"
    script.write_text(textwrap.dedent("""
        from ganga_like.gpi import *
        j = Job(application=Executable(exe='/bin/true'),
                splitter=ArgSplitter(args=[[str(i)] for i in range(200)]))
        print(j.id, flush=True)
        j.submit()
        j.wait()
    """))
    proc = subprocess.Popen([sys.executable, str(script)], env=gl_env(root), cwd=str(REPO),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    job_id = proc.stdout.readline().strip()
    assert job_id.isdigit(), proc.stderr.read()
    time.sleep(delay)
    os.kill(service_pid(root), signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    if proc.returncode != 0:  # it was cut off: one line says so
        lines = [l for l in err.splitlines() if l.strip()]
        assert "stopped during" in lines[-1], err
    result = client(root, f"""
        j = jobs({job_id})
        # Reads do not wait for the new service's recovery (it runs once Ray is up):
        # wait() returns once it has settled every subjob, final or new again.
        if j.wait(timeout=120).value == 'new':
            j.submit()   # subjobs the dead service never sent went back to new
        print(j.wait(timeout=120).value, j.subjob_counts)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "completed", result.stdout
    nothing_runs_for(root, job_id)


@pytest.mark.parametrize("delay", [0.02, 0.6])  # more points: make soak
def test_kill_9_of_the_service_during_a_resubmit_leaves_nothing_stuck(root, tmp_path, delay):
    """Subjobs that failed once are resubmitted and the service is SIGKILLed meanwhile:
    the next service brings each to its true state (a run that happened is applied, a
    queued one is queued again, one never sent goes back to new); none stays
    'submitting', every verb still works, and all end completed."""
    first = client(root, """
        j = Job(application=Executable(exe='/bin/sh'),
                splitter=ArgSplitter(args=[['-c', 'test -f ran && exit 0; touch ran; exit 1']
                                          for _ in range(100)]))
        j.submit()
        print(j.id, j.wait(timeout=120).value)
    """)
    job_id, outcome = (first.stdout.split() + ["", ""])[:2]
    assert job_id.isdigit() and outcome == "failed", first.stdout + first.stderr
    assert jobs_json(root)[job_id]["subjobs"] == {"failed": 100}
    script = tmp_path / "resubmit.py"
    script.write_text(f"from ganga_like.gpi import *\nprint('go', flush=True)\njobs({job_id}).resubmit()\n")
    proc = subprocess.Popen([sys.executable, str(script)], env=gl_env(root), cwd=str(REPO),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "go", proc.stderr.read()
    time.sleep(delay)
    os.kill(service_pid(root), signal.SIGKILL)
    proc.communicate(timeout=60)
    result = client(root, f"""
        import time
        j = jobs({job_id})
        counts = j.subjob_counts
        deadline = time.time() + 60
        while 'submitting' in j.subjob_counts and time.time() < deadline:
            time.sleep(0.2)
        assert 'submitting' not in j.subjob_counts, j.subjob_counts
        if j.status.value == 'new':
            j.submit()
        if j.status.value == 'failed':
            j.resubmit()
        print(j.wait(timeout=120).value, counts)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "completed", result.stdout
    assert jobs_json(root)[job_id]["subjobs"] == {"completed": 100}
    nothing_runs_for(root, job_id)


def held_until(flag: str) -> str:
    return (f'echo "[$CUDA_VISIBLE_DEVICES] $(date +%s.%N)"; '
            f'while [ ! -e {flag} ]; do sleep 0.1; done; echo "$(date +%s.%N)"')


def test_a_service_killed_while_a_subjob_holds_the_gpu_does_not_give_it_twice(root):
    """A GPU held by a running subjob stays its own across a SIGKILL of the service: the
    next service adopts the subjob with its stored ids and the subjob waiting for that GPU
    starts only once it is free again (declared ids). The holder runs until the test
    releases it (a flag file), so the new service's recovery is watched while the GPU is
    still held, whatever the machine's pace."""
    flag = str(root.parent / "release-the-gpu")
    PAYLOAD = held_until(flag)  # noqa: N806  (the one payload both subjobs run)
    submitted = client(root, f"""
        import time
        j = Job(application=Executable(exe='/bin/sh', args=['-c', {PAYLOAD!r}]),
                backend=Local(gpu_ids=[0], gpus=1, concurrency=4),
                splitter=ArgSplitter(args=[['-c', {PAYLOAD!r}]] * 2))
        j.submit()
        while j.subjob_counts.get('running') != 1:
            time.sleep(0.1)
        waiting = [s for s in j.subjobs if s.status == 'submitted'][0]
        print(j.id, waiting.id, waiting.backend_detail, waiting.backend_note, sep='|')
    """)
    assert submitted.returncode == 0, submitted.stderr
    job_id, waiting_id, detail, note = submitted.stdout.strip().split("|")
    assert (detail, note) == ("Resources", "needs 1 GPU, 0 of 1 free")
    old = service_pid(root)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE,
             what="the service to die")
    done = client(root, f"""
        import time
        j = jobs({job_id})
        waiter = j.subjobs({waiting_id})
        # The new service re-queues the waiting subjob once it has adopted the holder:
        # from then on a GPU it thought free would be handed out within a round. (Reads
        # do not wait for its recovery, which runs once its Ray is up: a status read
        # shows the latest commits, a history read alone does not.)
        while not any("re-queued" in entry[3] for entry in waiter.history):
            time.sleep(0.1)
            waiter.status
        for _ in range(20):  # re-queued: submitting until the new actor has it, then submitted
            holder, waiting = sorted(j.subjobs, key=lambda s: s.id != waiter.id, reverse=True)
            assert holder.status == "running" and waiting.status in ("submitting", "submitted"), \
                [(s.id, s.status, s.backend_detail) for s in j.subjobs]
            time.sleep(0.1)
        open({flag!r}, "w").close()
        print(j.wait(timeout=120).value)
    """)
    assert done.returncode == 0 and done.stdout.strip() == "completed", (done.stdout, done.stderr)
    spans = []
    for sub in (0, 1):
        first, end = (root / "workspace" / job_id / str(sub) / "output" / "stdout").read_text().splitlines()
        ids, start = first.split()
        assert ids == "[0]"
        spans.append((float(start), float(end)))
    (a_start, a_end), (b_start, b_end) = sorted(spans)
    assert b_start >= a_end, f"GPU 0 was held by both subjobs at once: {spans}"
    nothing_runs_for(root, job_id)


# -- each on a root of its own: a service started with settings of its own --------------------

def test_a_local_payload_runs_at_the_niceness_of_its_user(root):
    """A Local payload, and the actor that starts it, run at the niceness of the user who
    started the service, as Ganga's and xargs' do. Ray starts its workers at 15 unless
    told otherwise, and a worker's children inherit it: every payload ran at 15."""
    result = client(root, """
        j = Job(application=Executable(exe='/usr/bin/nice', args=[]))
        j.submit()
        assert j.wait(timeout=60) == 'completed', j.why()
        print('niceness', j.peek('stdout').strip())
    """)
    assert result.returncode == 0, result.stderr
    said, value = result.stdout.split()[-2:]
    assert (said, int(value)) == ("niceness", os.nice(0)), result.stdout


def test_idle_service_stops_and_leaves_nothing(tmp_path):
    root = tmp_path / "gl"
    result = client(root, """
        j = Job(application=Executable(exe='/bin/echo', args=['idle']))
        j.submit(); j.wait()
    """, env_extra={"GANGA_LIKE_IDLE": "2"})
    assert result.returncode == 0, result.stderr
    pid = service_pid(root)
    wait_for(lambda: not psutil.pid_exists(pid) or
             psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=60,
             what="the idle service to stop")
    status = run_gl(root, "service", "status", check_clean=False)
    assert status.returncode == 3 and "no service runs" in status.stdout
    finish_root(root, what="the idle-stopped service")  # asserts nothing of it is left


@pytest.fixture(scope="module")
def open_root(tmp_path_factory):
    """ONE root whose service was started with both of its ways to open up: a TLS listener
    for remote clients (``--listen``) and its outputs opened to the user's own group
    (``GANGA_LIKE_OUTPUT_GROUP``). Each test checks one of them; neither changes what the
    other does (the listener's secret and the group's modes are different files)."""
    import grp

    base = tmp_path_factory.mktemp("open")
    root = base / "gl"
    group = grp.getgrgid(os.getgid()).gr_name
    try:
        started = run_gl(root, "service", "start", "--listen", "127.0.0.1:0", "--json",
                         check_clean=False, env_extra={"GANGA_LIKE_OUTPUT_GROUP": group})
        assert started.returncode == 0, started.stderr
        yield root, base, json.loads(started.stdout)["listen"]
    finally:
        finish_root(root, what="the listening service with an output group")


def test_remote_listener_requires_the_secret(open_root):
    from ganga_like.channel.paths import ServicePaths
    from ganga_like.channel.tls import ensure_credentials

    root, base, listen = open_root
    other = base / "other"
    host, port = listen.rsplit(":", 1)
    secret = root / "service-secret.pem"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    remote = {"GANGA_LIKE_SERVICE": listen, "GANGA_LIKE_SECRET": str(secret),
              "GANGA_LIKE_DIR": str(base / "elsewhere")}
    ok = client(root, """
        j = Job(application=Executable(exe='/bin/echo', args=['remote']))
        j.submit(); print(j.wait().value, j.peek().strip())
    """, env_extra=remote)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["completed", "remote"]
    # Another root's secret (made as `service start --listen` makes one, by the same
    # function; no service of that root is needed to present it) is refused, in one line.
    other.mkdir(mode=0o700)
    ensure_credentials(ServicePaths(str(other)))
    wrong = client(root, "print(len(jobs))", env_extra=dict(
        remote, GANGA_LIKE_SECRET=str(other / "service-secret.pem")))
    assert wrong.returncode == 1
    assert "refused this client's secret" in wrong.stderr.splitlines()[-1], wrong.stderr
    # No secret at all: one line that says what to set.
    bare = client(root, "print(len(jobs))", env_extra={"GANGA_LIKE_SERVICE": listen})
    assert bare.returncode == 1 and "GANGA_LIKE_SECRET" in bare.stderr.splitlines()[-1]
    # A plain TCP connection gets no answer (TLS with a client certificate first).
    import socket

    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"\x00\x00\x00\x0f" + b'{"verb":"stop"}')
        sock.settimeout(5)
        try:
            data = sock.recv(100)
        except (ConnectionResetError, TimeoutError, OSError):
            data = b""
    assert b"stopping" not in data
    assert run_gl(root, "service", "status", check_clean=False).returncode == 0


def test_a_remote_client_reading_when_its_service_dies_gets_one_line(tmp_path):
    """A client on another machine cannot start the next service: a read that finds the
    database server gone ends with one line that says so. It came after ZODB's
    "Couldn't load state" log with its traceback."""
    root = tmp_path / "gl"
    try:
        started = run_gl(root, "service", "start", "--listen", "127.0.0.1:0", "--json",
                         check_clean=False)
        assert started.returncode == 0, started.stderr
        made = client(root, "for i in range(50): Job(name=f'r{i}')")
        assert made.returncode == 0, made.stderr
        remote = {"GANGA_LIKE_SERVICE": json.loads(started.stdout)["listen"],
                  "GANGA_LIKE_SECRET": str(root / "service-secret.pem"),
                  "GANGA_LIKE_DIR": str(tmp_path / "elsewhere")}
        env = gl_env(root)
        env.update(remote)
        script = tmp_path / "read.py"
        script.write_text("import sys\nprint('ready', len(jobs), flush=True)\n"
                          "sys.stdin.readline()\nprint([j.name for j in jobs])\n")
        reader = subprocess.Popen(
            [*GANGA_LIKE, "run", str(script)], env=env, cwd=str(REPO), text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert reader.stdout.readline().split() == ["ready", "50"], reader.stderr.read()
        pid = service_pid(root)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(pid) or
                 psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, what="the service to die")
        _, err = reader.communicate("go\n", timeout=60)
        assert reader.returncode == 1, err
        assert "Traceback" not in err and "Couldn't load state" not in err, err
        last = err.strip().splitlines()[-1]
        assert "is not available" in last and "connection was lost" in last, err
    finally:
        finish_root(root)


def test_outputs_can_be_opened_to_one_group_and_nothing_else(open_root):
    root = open_root[0]
    result = client(root, """
        j = Job(application=Executable(exe='/bin/sh', args=['-c', 'echo out; echo made > made.txt']))
        j.submit(); print(j.wait(timeout=60).value, j.outputdir)
    """)
    assert result.returncode == 0, result.stderr
    status, outputdir = result.stdout.split()
    assert status == "completed"
    mode = lambda path: stat.S_IMODE(os.stat(path).st_mode)  # noqa: E731
    assert mode(root) == 0o750 and os.stat(root).st_gid == os.getgid()
    for name in ("stdout", "stderr", "made.txt"):  # outputs, the payload's own files too
        assert mode(Path(outputdir) / name) == 0o640, name
    assert mode(Path(outputdir)) & 0o777 == 0o750  # setgid too: new files get the group
    # Never the database (job definitions carry environments), nor the logs, sockets,
    # nor the listener's secret.
    assert mode(root / "repository") == 0o700
    for name in ("log", "service.log", "service.sock", "zeo.sock", "service.json",
                 "service-secret.pem"):
        assert mode(root / name) & 0o077 == 0, name


def test_an_output_group_that_is_not_yours_is_one_line(tmp_path):
    root = tmp_path / "gl"
    try:
        result = run_gl(root, "service", "start", check_clean=False,
                        env_extra={"GANGA_LIKE_OUTPUT_GROUP": "no-such-group-here"})
        assert result.returncode == 1
        lines = [l for l in result.stderr.splitlines() if l.strip()]
        assert "is not one of your groups; choose one of:" in lines[-1], result.stderr
    finally:
        assert_nothing_runs(root)  # the refused service is gone, its Ray never started
