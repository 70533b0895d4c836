"""The service's Ray (issue 22): started in the background, with only what the backends use.

A first script on a repository is answered while the service's Ray starts: it reads,
creates and edits at once, and its submit waits for Ray. The Ray the service started runs
no API server, autoscaler monitor, log monitor or idle worker: read from the process table
of that Ray, not from a setting. A service killed with SIGKILL while its Ray is still
starting leaves none of Ray's processes behind (its guardian ends them), and the next
client's service starts as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib import metadata
from pathlib import Path

import psutil
import pytest

from ganga_like.channel.paths import ServicePaths
from ganga_like.ray_runtime import stands_in_for_agents
from ganga_like.service import reaper
from ganga_like.status import RayState
from tests.service.test_service import client, service_pid, service_status, wait_for
from tests.test_cli import GANGA_LIKE, REPO, finish_root, gl_env, run_gl

# What Ray's own ray.init() head starts and a head of ours does without: (what, how it
# shows in the process table).
NOT_STARTED = (("the API server (dashboard)", "ray/dashboard/dashboard.py"),
               ("the autoscaler monitor", "autoscaler/_private/monitor.py"),
               ("the log monitor", "_private/log_monitor.py"),
               ("an idle worker", "ray::IDLE"),
               ("Ray's dashboard agent", "ray/dashboard/agent.py"),
               ("Ray's runtime-env agent", "runtime_env/agent/main.py"))
IDLE_WORKER_END = 10.0  # Ray ends a worker idle for 1 s; slack for a loaded machine

FIRST_SCRIPT = """
    import json, time
    from ganga_like.gpi import *
    from ganga_like.client.link import Link

    def ray_state():
        return Link(ROOT, unix_path=SOCKET).call('status')[0]['ray']

    first_read = len(jobs)                           # starts the service (this root has none)
    seen = {'before': ray_state()}
    seen['listing'] = [first_read, len(str(jobs)) > 0]   # reads
    j = Job(name='first', application=Executable(exe='/bin/true'),
            splitter=ArgSplitter(args=[[str(i)] for i in range(3)]))   # a create
    j.comment = 'edited while Ray starts'            # an edit
    seen['id'] = j.id
    seen['after'] = ray_state()
    print(json.dumps(seen), flush=True)
    j.submit()                                       # waits for Ray, then runs
    print(json.dumps({'status': j.wait(timeout=120).value, 'ray': ray_state(),
                      'comment': jobs(j.id).comment}), flush=True)
"""


def _ray_processes(root: Path) -> list[psutil.Process]:
    """The processes of the Ray that the root's service runs (its recorded directory)."""
    ray_dir = ServicePaths(str(root)).read_state().get("ray_dir", "")
    assert ray_dir, "the service recorded no Ray directory"
    return reaper.processes_using(ray_dir)


def _ray_state(paths: ServicePaths) -> str:
    """The service's Ray, as its status says."""
    return str(service_status(Path(paths.root))["ray"])


def _command(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


@pytest.fixture(scope="module")
def first_script(tmp_path_factory):
    """A user's first script on a new root: it starts the service, reads, creates and
    edits, then submits and waits. Its two lines, and the root (its service stays up)."""
    root = tmp_path_factory.mktemp("raystart") / "gl"
    paths = ServicePaths(str(root))
    code = f"ROOT = {str(root)!r}\nSOCKET = {paths.control_socket!r}\n" + textwrap.dedent(FIRST_SCRIPT)
    try:
        result = subprocess.run([sys.executable, "-c", code], env=gl_env(root), cwd=str(REPO),
                                text=True, capture_output=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert len(lines) == 2, result.stdout + result.stderr[-2000:]
        yield root, lines[0], lines[1]
    finally:
        finish_root(root, what="the first script's service")


def test_a_first_script_reads_creates_and_edits_while_ray_starts(first_script):
    _, during, done = first_script
    assert during["before"] == RayState.STARTING.value, during
    assert during["after"] == RayState.STARTING.value, \
        f"Ray came up before the reads were answered: nothing shown ({during})"
    assert during["listing"] == [0, True] and during["id"] == 0, during


def test_its_submit_waits_for_ray_and_runs(first_script):
    _, _, done = first_script
    assert done == {"status": "completed", "ray": RayState.UP.value,
                    "comment": "edited while Ray starts"}, done


def test_the_services_ray_runs_only_what_the_backends_use(first_script):
    root, _, _ = first_script
    deadline = time.monotonic() + IDLE_WORKER_END
    while True:
        commands = [_command(proc) for proc in _ray_processes(root)]
        unwanted = [(what, cmd) for what, mark in NOT_STARTED for cmd in commands if mark in cmd]
        if not unwanted or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not unwanted, unwanted
    # What it does run: the head, the stand-ins for the raylet's two agents, the Local
    # backend's actor (an actor's worker is titled ray::<class>, or ray::<class>.<method>
    # while in a call).
    names = sorted(_name(cmd) for cmd in commands)
    assert stands_in_for_agents(metadata.version("ray")), \
        "this test expects a Ray release that runs the stand-in agents (ray_runtime)"
    assert names == sorted(["gcs_server", "raylet", "ray_stand_in", "ray_stand_in",
                            "ray::LocalActor"]), names
    stand_ins = [proc for proc in _ray_processes(root) if _name(_command(proc)) == "ray_stand_in"]
    pss = [proc.memory_full_info().pss / 2**20 for proc in stand_ins]
    assert all(size < 20 for size in pss), f"a stand-in agent takes {pss} MiB PSS"


def _name(command: str) -> str:
    words = command.split()
    if any(word.endswith("/ray_stand_in.py") for word in words[:4]):  # not the raylet's options
        return "ray_stand_in"
    return words[0].rsplit("/", 1)[-1].split(".")[0]


def test_kill_9_of_the_service_while_its_ray_starts_leaves_nothing(tmp_path):
    """SIGKILL the service once its Ray has begun (its GCS runs) but is not up: the
    guardian ends every Ray process; the next client's service answers and stops clean."""
    root = tmp_path / "gl"
    paths = ServicePaths(str(root))
    try:
        started = run_gl(root, "service", "start", "--json", check_clean=False)
        assert started.returncode == 0, started.stderr
        pid = int(json.loads(started.stdout)["pid"])
        deadline = time.monotonic() + 60
        while not any("gcs_server" in _command(p) for p in _ray_processes(root)):
            assert time.monotonic() < deadline, "Ray's GCS never started"
            time.sleep(0.02)
        killed_while = _ray_state(paths)
        os.kill(pid, signal.SIGKILL)
        ray_dir = paths.read_state()["ray_dir"]
        deadline = time.monotonic() + 30
        while reaper.processes_using(ray_dir):
            assert time.monotonic() < deadline, \
                [_command(p) for p in reaper.processes_using(ray_dir)]
            time.sleep(0.1)
        assert killed_while == RayState.STARTING.value, \
            f"Ray was {killed_while} when the service was killed: not the case under test"
        again = run_gl(root, "jobs", check_clean=False)
        assert again.returncode == 0, again.stderr
    finally:
        finish_root(root, what="the service started after the SIGKILL")


def test_a_ray_that_cannot_start_is_one_line_and_the_service_stays_for_reads(tmp_path):
    """A Ray directory too deep for Ray's socket paths (a user's long RAY_TMPDIR): the
    submit that needs Ray gets Ray's reason in one line; reads, creates and the status
    go on, and the status says why Ray is not there."""
    root = tmp_path / "gl"
    deep = tmp_path / ("d" * (110 - len(str(tmp_path))))  # Ray's own paths add more below it
    deep.mkdir()
    code = textwrap.dedent("""
        from ganga_like.gpi import *
        j = Job(application=Executable(exe='/bin/true'))
        try:
            j.submit()
        except Exception as exc:
            print('REFUSED', type(exc).__name__, str(exc).splitlines()[0] if str(exc) else '')
        print('AFTER', len(jobs), j.status.value)
    """)
    try:
        result = subprocess.run([sys.executable, "-c", code], env=gl_env(root, ray_tmp=str(deep)),
                                cwd=str(REPO), text=True, capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        refused, after = result.stdout.splitlines()[-2:]
        assert refused.startswith("REFUSED ServiceError Ray could not start: ") and \
            "AF_UNIX path length" in refused, result.stdout
        assert after == "AFTER 1 new", result.stdout
        status = run_gl(root, "service", "status", check_clean=False, ray_tmp=str(deep))
        assert status.returncode == 0, status.stderr
        assert "Ray: could not start (" in status.stdout, status.stdout
    finally:
        finish_root(root, what="the service whose Ray could not start")


def test_a_stop_while_ray_starts_does_not_wait_for_it_and_leaves_nothing(tmp_path):
    """`service stop` while the service's Ray starts: the service stops without waiting
    for the start to end (it may take minutes against a cluster that does not answer),
    and none of Ray's processes is left."""
    root = tmp_path / "gl"
    paths = ServicePaths(str(root))
    try:
        started = run_gl(root, "service", "start", check_clean=False)
        assert started.returncode == 0, started.stderr
        asked_while = _ray_state(paths)
        stopped = run_gl(root, "service", "stop", check_clean=False)
        assert stopped.returncode == 0, stopped.stderr
        assert asked_while == RayState.STARTING.value, \
            f"Ray was {asked_while} when the stop was asked: not the case under test"
    finally:
        finish_root(root, what="the service stopped while its Ray started")


def _freeze_gcs_before_its_port(root: Path) -> tuple[subprocess.Popen, psutil.Process | None]:
    """Start the root's service and stop its GCS (SIGSTOP: a head that hangs) before
    the GCS has written its port file; the start command, and the GCS (None: it had
    written its port already, too late for the case)."""
    start = subprocess.Popen([*GANGA_LIKE, "service", "start"], env=gl_env(root),
                             cwd=str(REPO), text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    service = None
    while service is None:
        assert time.monotonic() < deadline, "the service never started"
        service = next((p for p in psutil.process_iter(["cmdline"])
                        if "ganga_like.service.main" in (p.info["cmdline"] or [])
                        and str(root) in (p.info["cmdline"] or [])), None)
        time.sleep(0.005)
    while time.monotonic() < deadline:
        for child in service.children():
            with contextlib.suppress(psutil.Error):
                command = child.cmdline()
                if command and command[0].endswith("gcs_server"):
                    child.suspend()
                    options = dict(a[2:].split("=", 1) for a in command
                                   if a.startswith("--") and "=" in a)
                    port_file = Path(options["session-dir"]) / \
                        f"gcs_server_port_{options['node-id']}"
                    return start, None if port_file.exists() else child
        time.sleep(0.002)
    raise AssertionError("the service's GCS never started")


def test_a_gcs_that_hangs_at_start_stops_no_read_and_no_stop(tmp_path):
    """Ray's own wait for its GCS's port holds the GIL (30 s at most): with a GCS that
    hangs before it writes its port, every thread of the service stood still, reads
    waited 30 s, and a service stopped meanwhile could not exit. Now the service
    answers a read at once, stops when asked, and leaves nothing (the reaper ends the
    stopped GCS)."""
    for attempt in range(5):
        root = tmp_path / f"gl{attempt}"
        gcs = None
        try:
            start, gcs = _freeze_gcs_before_its_port(root)
            assert start.wait(timeout=60) == 0, start.stderr.read() if start.stderr else ""
            if gcs is None:
                continue  # its port was written already: not the case under test
            pid = service_pid(root)
            began = time.monotonic()
            read = run_gl(root, "jobs", check_clean=False, timeout=60)
            read_took = time.monotonic() - began
            assert read.returncode == 0, read.stderr
            began = time.monotonic()
            stopped = run_gl(root, "service", "stop", check_clean=False, timeout=60)
            assert stopped.returncode == 0, stopped.stderr
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).wait(timeout=20)
            stop_took = time.monotonic() - began
            # Ray's wait is 30 s: a service frozen by it takes that long, ours far less.
            assert read_took < 10 and stop_took < 15, (read_took, stop_took)
            return
        finally:
            if gcs is not None:
                with contextlib.suppress(psutil.Error):
                    gcs.resume()
            finish_root(root, what="the service whose GCS hung at its start")
    pytest.skip("the GCS wrote its port before it could be stopped, five times")


# A fault put on the service's PYTHONPATH: Ray's connect, inside ray.init and under Ray's
# connect lock, hangs (as it can while the head it connects to is being ended).
HANGING_CONNECT = """
import os, sys, threading, time

def _hang_rays_connect():
    while "ray._private.worker" not in sys.modules:
        time.sleep(0.001)
    worker = sys.modules["ray._private.worker"]
    while not hasattr(worker, "connect"):
        time.sleep(0.001)
    connect = worker.connect

    def hanging(*args, **kwargs):
        with worker._connect_or_shutdown_lock:
            open(os.path.join(os.path.dirname(__file__), "held"), "w").close()
            time.sleep(120)
        return connect(*args, **kwargs)

    worker.connect = hanging

with open("/proc/self/cmdline") as _own:
    if "ganga_like.service.main" in _own.read().split("\\0"):
        threading.Thread(target=_hang_rays_connect, daemon=True).start()
"""


def test_a_stop_while_rays_connect_hangs_ends_the_service_at_once(tmp_path):
    """Ray's exit hook (ray.shutdown) waits for the lock that Ray's connect holds: a
    service stopped while its Ray connected stayed after its "stopped" line until the
    connect gave up (a minute). It now leaves at once, and nothing of it is left."""
    fault = tmp_path / "fault"
    fault.mkdir()
    (fault / "sitecustomize.py").write_text(HANGING_CONNECT)
    extra = {"PYTHONPATH": os.pathsep.join(p for p in (str(fault), os.environ.get("PYTHONPATH"))
                                           if p)}
    root = tmp_path / "gl"
    try:
        started = run_gl(root, "service", "start", check_clean=False, env_extra=extra)
        assert started.returncode == 0, started.stderr
        pid = service_pid(root)
        wait_for(lambda: (fault / "held").exists(), 60, "Ray's connect to be held")
        stopped = run_gl(root, "service", "stop", check_clean=False, env_extra=extra)
        assert stopped.returncode == 0, stopped.stderr
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=20)  # TimeoutExpired: it stayed
    finally:
        finish_root(root, what="the service stopped while Ray's connect hung")


def _submit_one_that_waits(root: Path, go: Path, env_extra: dict | None = None) -> int:
    """A job whose payload runs until ``go`` exists, running; the service's pid."""
    submitted = client(root, f"""
        import time
        j = Job(application=Executable(exe='/bin/sh', args=[
            '-c', 'while [ ! -e {go} ]; do sleep 0.05; done; echo adopted']))
        j.submit()
        while j.status != 'running':
            time.sleep(0.05)
    """, env_extra=env_extra)
    assert submitted.returncode == 0, submitted.stderr
    return service_pid(root)


def _stopped_by_itself(root: Path, pid: int, reason: str) -> None:
    """The service stopped, ``reason`` in its log, and its whole stop ran: Ray's driver,
    asked to disconnect from a raylet that is gone, would have ended the process halfway
    (database server, index, state file)."""
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             timeout=60, what="the service to stop once its Ray died")
    log = (root / "service.log").read_text()
    assert f"stopping: its Ray ended ({reason}" in log, log[-2000:]
    after_stopping = log.split("stopping: its Ray ended", 1)[1]
    assert f"service[{pid}] INFO stopped\n" in after_stopping, log[-2000:]
    assert not (root / "service.json").exists()


def _adopted_and_completed(root: Path, go: Path, env_extra: dict | None = None) -> None:
    """The next client's service adopts the payload, which ends now and is seen
    complete; that service found the database closed, as after any stop."""
    go.touch()
    done = client(root, "print(jobs(0).wait(timeout=60).value)", env_extra=env_extra)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["completed"], done.stdout
    assert (root / "workspace" / "0" / "output" / "stdout").read_text() == "adopted\n"
    log = (root / "service.log").read_text()
    assert "left by a process that was killed" not in log, log[-2000:]
    assert "Ignoring index" not in log, log[-2000:]


def test_a_service_whose_ray_dies_stops_and_the_next_one_adopts_the_work(tmp_path):
    """SIGKILL a stand-in agent of the service's Ray: its raylet exits with it (Ray's own
    rule for its agents), and the service, whose backends are gone and whose verbs would
    wait on Ray for ever, stops by itself, its reason in its log, and its whole stop runs
    (the next service finds the database closed as after any stop). Nothing of that Ray
    is left; the subjob kept running, and the next client's service adopts it and sees it
    complete."""
    root = tmp_path / "gl"
    go = tmp_path / "go"
    try:
        pid = _submit_one_that_waits(root, go)
        ray_dir = ServicePaths(str(root)).read_state()["ray_dir"]
        stand_ins = [proc for proc in reaper.processes_using(ray_dir)
                     if _name(_command(proc)) == "ray_stand_in"]
        assert len(stand_ins) == 2, [_command(proc) for proc in reaper.processes_using(ray_dir)]
        stand_ins[0].kill()
        _stopped_by_itself(root, pid, "its raylet (pid ")
        wait_for(lambda: not reaper.processes_using(ray_dir), timeout=30,
                 what="the dead Ray's processes to end")
        _adopted_and_completed(root, go)
    finally:
        finish_root(root, what="the service started after its Ray died")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cluster_auth(cluster_dir: str) -> dict[str, str]:
    """Token authentication, as Ray's documentation has every process of a cluster set it
    (the mode and the token's file in the environment); the users who join set the same."""
    token = os.path.join(cluster_dir, "auth_token")
    with open(os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(secrets.token_hex(32))
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": token}


def _ray_start(ray_dir: str, auth: dict[str, str], *args: str) -> str:
    """``ray start`` as docs/backends.md tells a user to start a cluster for ganga_like
    (its head without ``kill_child_processes_on_worker_exit``); the cluster's GCS checks
    its nodes' health every half second (its own setting, so a dead node is known in
    seconds: the test's cluster, not the product's behaviour). What it said."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "GANGA_LIKE_"))}
    env.update(RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="3",
               RAY_health_check_initial_delay_ms="0", **auth)
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    head = ["--system-config", json.dumps({"kill_child_processes_on_worker_exit": False})] \
        if "--head" in args else []
    # Ports of its own where Ray has fixed defaults (another Ray on this machine, a test's
    # or a user's, may hold them).
    for option in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                   "--runtime-env-agent-port", "--metrics-export-port"):
        head += [option, str(_free_port())]
    started = subprocess.run(
        [ray, "start", *args, *head, "--num-cpus", "1",
         "--disable-usage-stats"], env=env, cwd=ray_dir, text=True, capture_output=True, timeout=120)
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    return started.stdout + started.stderr


def test_a_service_on_a_cluster_whose_node_dies_stops_and_the_next_one_adopts_the_work(tmp_path):
    """On a cluster the service joined (``GANGA_LIKE_RAY_ADDRESS``), SIGKILL this
    machine's raylet: Ray's driver neither ends nor tells the service, and a verb that
    needs a new actor would wait for ever (seen: a kill() hung). The cluster marks the
    node dead; the service asks, stops by itself with the reason in its log, and its
    whole stop runs. A node started again on this machine, the next client's service
    adopts the subjob, which kept running, and sees it complete."""
    root = tmp_path / "gl"
    go = tmp_path / "go"
    cluster_dir = tempfile.mkdtemp(prefix="glc-", dir="/tmp")  # short: Ray's socket paths
    port = _free_port()
    try:
        auth = _cluster_auth(cluster_dir)
        said = _ray_start(cluster_dir, auth, "--head", "--port", str(port), "--include-dashboard=false",
                          "--temp-dir", cluster_dir)
        # The address the cluster tells its users to join (on the machine's own address).
        joined = re.search(r"ray start --address='([^']+)'", said)
        assert joined is not None, said[-2000:]
        address = {"GANGA_LIKE_RAY_ADDRESS": joined.group(1), **auth}
        pid = _submit_one_that_waits(root, go, address)
        raylets = [proc for proc in reaper.processes_using(cluster_dir)
                   if _name(_command(proc)) == "raylet"]
        assert len(raylets) == 1, [_command(proc) for proc in reaper.processes_using(cluster_dir)]
        raylets[0].kill()
        _stopped_by_itself(root, pid, "the cluster reports this machine's node ")
        _ray_start(cluster_dir, auth, "--address", joined.group(1))  # a new node, same cluster
        _adopted_and_completed(root, go, address)
    finally:
        try:
            finish_root(root, what="the service started after its node died")
        finally:
            for proc in reaper.processes_using(cluster_dir):
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            wait_for(lambda: not reaper.processes_using(cluster_dir), timeout=30,
                     what="the test's cluster to end")
            shutil.rmtree(cluster_dir, ignore_errors=True)
