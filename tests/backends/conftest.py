"""Fixtures for backend tests: one local Ray per session, spec builders, a leak check,
and the one run of the Hosts cluster driver.

Every process a test starts carries ``GANGA_LIKE_MARKER=<session prefix>...``;
after the session no such process may be alive.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence

import psutil
import pytest

try:  # tests/ may or may not be a package; work either way
    from tests import ray_helpers
except ImportError:  # pragma: no cover - depends on how pytest set sys.path
    import ray_helpers  # type: ignore[no-redef]

from ganga_like.backends.base import SubjobSpec
from ganga_like.backends.runtime import procs
from tests import early
from tests.backends.cluster_processes import processes_of

SESSION_PREFIX = f"gltest-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (reused if already initialised)."""
    session = ray_helpers.start_test_ray(num_cpus=2)
    yield session
    ray_helpers.stop_test_ray(session)


@pytest.fixture(scope="module")
def actor_pool():
    """Backend actors a module's tests share (``contract.ActorPool``); stopped after it."""
    from tests.backends.contract import ActorPool

    pool = ActorPool()
    yield pool
    pool.stop()


@pytest.fixture(scope="session", autouse=True)
def no_leaked_processes():
    """After the session, no process started by these tests may still run."""
    yield
    leaked = procs.find_by_marker(SESSION_PREFIX)
    for pid, created, _marker in leaked:
        procs.kill_tree(pid, created, grace=0.5)
    assert not leaked, f"processes left running by the tests: {leaked}"


@pytest.fixture
def marker_prefix(request) -> str:
    """A marker prefix unique to one test: ``<session>-<n>``; markers add ``:<fqid>``."""
    return f"{SESSION_PREFIX}-{next(_test_counter)}"


_test_counter = itertools.count()


@pytest.fixture
def specs(tmp_path, marker_prefix):
    """``specs([[exe, *args], ...])`` -> SubjobSpecs with fresh workdirs under tmp_path."""
    counter = itertools.count()

    def build(commands: Iterable[Sequence[str]], env: dict[str, str] | None = None) -> list[SubjobSpec]:
        result = []
        for command in commands:
            sub = next(counter)
            fqid = f"7.{sub}"
            workdir = tmp_path / "workspace" / "7" / str(sub)
            workdir.mkdir(parents=True, exist_ok=True)
            result.append(
                SubjobSpec(
                    job_id=7,
                    subjob_id=sub,
                    fqid=fqid,
                    exe=command[0],
                    args=tuple(command[1:]),
                    env=dict(env or {}),
                    workdir=str(workdir),
                    marker=f"{marker_prefix}:{fqid}",
                )
            )
        return result

    return build


@pytest.fixture
def leftover_check(marker_prefix):
    """Fail a test that leaves processes behind (and end them, so others are not disturbed)."""
    yield
    deadline = time.monotonic() + 2.0  # a payload may be in its last milliseconds
    while (leaked := procs.find_by_marker(marker_prefix + ":")) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid, created, _marker in leaked:
        procs.kill_tree(pid, created, grace=0.5)
    assert not leaked, f"test left processes running: {leaked}"


# -- the Hosts cluster driver: run once, read by test_hosts_cluster.py and test_hosts_node_loss.py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOSTS_DRIVER_TIMEOUT = 420  # seconds: ≈100 s on a quiet machine, several times that under heavy load


def _junit_results(xml_path: str) -> dict[str, dict]:
    """``{"TestClass::name" or "name": {outcome, message, time}}`` of a JUnit report."""
    results: dict[str, dict] = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        name = case.get("name", "").split("[", 1)[0]
        key = f"{cls}::{name}" if cls.startswith("Test") else name
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if outcome == "passed" else outcome
                message += f"[{child.tag}] {child.get('message', '')}\n{(child.text or '')[-3000:]}\n"
            elif child.tag == "skipped":
                outcome, message = "skipped", child.get("message", "")
        previous = results.get(key)
        if previous is None or previous["outcome"] == "passed":
            results[key] = {"outcome": outcome, "message": message, "time": float(case.get("time", 0))}
    return results


@early.launcher("hosts_cluster_run")
def launch_hosts_cluster_driver(factory: pytest.TempPathFactory) -> early.Launched:
    """hosts_cluster_driver.py in its own pytest process (see :func:`hosts_cluster_run`)."""
    out = factory.mktemp("hosts-cluster")
    xml_path, basetemp = str(out / "report.xml"), out / "tmp"
    ray_tmp = tempfile.mkdtemp(prefix="glh-", dir="/tmp")  # short: Ray's socket paths are limited
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # a new user's
    env["RAY_TMPDIR"] = ray_tmp
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", xml_path,
         "--basetemp", str(basetemp), os.path.join(HERE, "hosts_cluster_driver.py")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    launched_at = time.monotonic()

    def read(output: str) -> dict:
        elapsed = time.monotonic() - launched_at
        deadline = time.monotonic() + 15
        while (left := processes_of(ray_tmp)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for leftover in left:
            try:
                leftover.kill()
            except psutil.Error:
                pass
        results = _junit_results(xml_path) if os.path.exists(xml_path) else {}
        print(json.dumps({"elapsed": round(elapsed, 1),
                          "results": {k: v["outcome"] for k, v in results.items()}}, indent=1))
        return {"results": results, "output": output, "leftovers": [p.pid for p in left],
                "elapsed": elapsed, "basetemp": basetemp}

    def cleanup() -> None:
        for leftover in processes_of(ray_tmp):
            try:
                leftover.kill()
            except psutil.Error:
                pass
        shutil.rmtree(ray_tmp, ignore_errors=True)

    return early.Launched(proc, HOSTS_DRIVER_TIMEOUT, read, cleanup)


@pytest.fixture(scope="session")
def hosts_cluster_run(tmp_path_factory):
    """hosts_cluster_driver.py, run ONCE in its own pytest process (Ray allows one cluster
    connection per process, and this session has its local Ray): a 6-node
    ``ray.cluster_utils.Cluster`` for the backend contract, the Autotest scenarios and,
    last, the node-loss phase. Started right after collection and read at the end of the
    run (``tests/early.py``). Shared by test_hosts_cluster.py (one test per inner test)
    and test_hosts_node_loss.py (the phase's facts): both only read what the run left
    (its JUnit report, the phase's facts file, the cluster's leftover processes), so
    neither can disturb the other. Afterwards no process of that cluster may be left
    (they are found by the driver's RAY_TMPDIR)."""
    run = early.launched("hosts_cluster_run", tmp_path_factory)
    yield run.finish()
    run.cleanup()


# -- engines of a module's own, and Slurm's time limit: a job started with the session's Slurm

@contextlib.contextmanager
def own_engine(factory: pytest.TempPathFactory, name: str) -> Iterator:
    """A real session on a repository of its own (noted for the leak check), closed after."""
    from ganga_like.config import Config
    from ganga_like.engine.core import Engine
    from tests import conftest

    engine = Engine(Config.from_env(root=str(factory.mktemp(name) / "gl")))
    conftest.TEST_REPOSITORIES.add(engine.repo_uuid)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="module")
def engine(ray_session, tmp_path_factory) -> Iterator:
    """One real session for a module's tests, which share its repository (and its backend
    actors: one start, not one per test); the default session while they run."""
    from ganga_like.engine.core import set_default_session

    with own_engine(tmp_path_factory, "engine") as session:
        set_default_session(session)
        yield session
        set_default_session(None)


@pytest.fixture(scope="session")
def slurm_over_time(ray_session, slurm, tmp_path_factory):
    """``(engine, job)``: a job of one task asking Slurm for one minute that would sleep
    for five, submitted through an engine of its own as soon as the session's Slurm is
    used (see :func:`slurm_over_time_first`). Slurm counts a time limit in whole minutes
    and checks it every 30 s, so the job ends as TIMEOUT 60-90 s after it starts: that
    wait passes while the other Slurm tests run, and test_slurm_limits.py only checks
    how it ended. Whatever the test did, nothing of the job outlives the session."""
    from ganga_like.backends.slurm.config import Slurm
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.status import FINAL

    with own_engine(tmp_path_factory, "slurm-over-time") as engine:
        job = Job(application=Executable(exe="/bin/sleep", args=["300"]),
                  backend=Slurm(conf=slurm.conf, time="1"))
        engine.submit(job)
        yield engine, job
        if job.status not in FINAL:  # the checking test was not run, or failed early
            engine.kill(job)


@pytest.fixture(autouse=True)
def slurm_over_time_first(request):
    """Every test that uses the session's Slurm starts :func:`slurm_over_time` first
    (once): whichever Slurm module runs first, the job's minute starts with the group."""
    if "slurm" in request.fixturenames:
        request.getfixturevalue("slurm_over_time")
