"""Fixtures shared by every test: an isolated root, one local Ray, a leak check.

Nothing a test does may touch the user's ~/gangalike or ~/.ray: HOME and
GANGA_LIKE_DIR point into a temporary directory for the whole run, and no Ray or
ganga_like variable of the developer's shell reaches a test. Ray starts once per
test session, as the product starts it.
"""

from __future__ import annotations

import ast
import os
import tempfile
import time

import pytest

from ganga_like.ray_runtime import settle_environment

_ROOT = tempfile.mkdtemp(prefix="gl-tests-")
# Places, not behaviour: a new user's environment (a fresh HOME, no ~/.ray, no Ray or
# ganga_like variables), with every repository under this run's directory. Ray runs as
# it does for users (token authentication included): see ganga_like.ray_runtime.
for _name in [n for n in os.environ if n.startswith(("RAY_", "GANGA_LIKE_")) and n != "RAY_TMPDIR"]:
    del os.environ[_name]
os.environ["HOME"] = os.path.join(_ROOT, "home")
os.makedirs(os.environ["HOME"], mode=0o700)
os.environ["GANGA_LIKE_DIR"] = os.path.join(_ROOT, "default")
# This process starts Ray (and test modules import the actor drivers): settle Ray's
# environment first, as the service does.
settle_environment()

from tests import early, workers

try:
    from tests import ray_helpers
except ImportError:  # pragma: no cover - depends on how pytest set sys.path
    import ray_helpers  # type: ignore[no-redef]


# What makes a test need Ray or the service (marked ``ray``; ``-m 'not ray'`` runs the
# rest, the pure core, in seconds): importing one of these, requesting the test Ray
# (``ray_session``, also through ``session``; ``hosts_cluster_run``, the Hosts cluster
# driver's run), or running a Ray driver script.
NEEDS_RAY_IMPORTS = ("ray", "ganga_like.ray_runtime", "ganga_like.gpi", "ganga_like.client",
                     "tests.test_cli", "tests.service", "tests.faults", "tests.ray_helpers",
                     "tests.backends.contract")
NEEDS_RAY_FIXTURES = ("ray_session", "hosts_cluster_run")
_NEEDS_RAY: dict[str, bool] = {}


def _module_needs_ray(path) -> bool:
    key = str(path)
    if key not in _NEEDS_RAY:
        source = path.read_text()
        names = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module if not node.level else f"{path.parent.name}.{node.module}"
                names.update([base] + [f"{base}.{alias.name}" for alias in node.names])
        own = ".".join(path.relative_to(path.parents[len(path.parts) - 1 - path.parts.index("tests")])
                       .with_suffix("").parts)
        _NEEDS_RAY[key] = "_driver.py" in source or any(
            name == wanted or name.startswith(wanted + ".")
            for name in names | {own} for wanted in NEEDS_RAY_IMPORTS)
    return _NEEDS_RAY[key]


def pytest_xdist_make_scheduler(config, log):
    """Workers get whole modules, and the modules of one slow shared run together."""
    return workers.ModuleScheduling(config, log)


def pytest_itemcollected(item) -> None:
    """A test is marked ``ray`` by what it imports and requests, not by its folder (as it
    is collected: before ``-m`` chooses)."""
    if _module_needs_ray(item.path) or set(NEEDS_RAY_FIXTURES) & set(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.ray)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Once ``-m`` and ``-k`` have chosen: under pytest-xdist, tests are grouped for the
    workers (``tests/workers.py``); otherwise the slow drivers the chosen tests read
    start now, and those tests run last (``tests/early.py``). A driver no chosen test
    reads is not started."""
    if workers.under_xdist(config):
        workers.order(items)
        workers.start_pinned_runs(config, items)
    else:
        early.start_and_reorder(config, items)


def pytest_sessionfinish(session, exitstatus) -> None:
    early.stop_unread()


TEST_REPOSITORIES: set[str] = set()  # repository ids created by tests (for the leak check)


@pytest.fixture(scope="session")
def ray_session():
    session = ray_helpers.start_test_ray(num_cpus=2)
    yield session
    ray_helpers.stop_test_ray(session)


@pytest.fixture
def gl_config(tmp_path):
    from ganga_like.config import Config

    return Config.from_env(root=str(tmp_path / "gl"))


@pytest.fixture
def session(ray_session, gl_config):
    """A real session on a fresh FileStorage, with the shared local Ray."""
    from ganga_like.engine.core import Engine, set_default_session

    s = Engine(gl_config)
    TEST_REPOSITORIES.add(s.repo_uuid)
    set_default_session(s)
    yield s
    leftovers = _still_running(s.repo_uuid)
    s.close()
    set_default_session(None)
    _end_left(leftovers)


@pytest.fixture(scope="module")
def module_engine(ray_session, tmp_path_factory):
    """One real engine on a fresh FileStorage for a whole module (see ``shared_session``)."""
    from ganga_like.config import Config
    from ganga_like.engine.core import Engine, set_default_session

    engine = Engine(Config.from_env(root=str(tmp_path_factory.mktemp("shared") / "gl")))
    TEST_REPOSITORIES.add(engine.repo_uuid)
    yield engine
    engine.close()
    set_default_session(None)


@pytest.fixture
def shared_session(module_engine):
    """``session`` for a module whose tests each work on jobs of their own and end what
    they start: one engine and one backend actor for all of them (an engine's first
    submit starts its actor, a Ray worker: seconds under load). After each test nothing
    of the repository may still run, as after ``session``."""
    from ganga_like.engine.core import set_default_session

    set_default_session(module_engine)
    yield module_engine
    _end_left(_still_running(module_engine.repo_uuid))


def _still_running(repo_uuid: str, grace: float = 3.0) -> list:
    """The repository's processes still running, after up to ``grace`` seconds for
    short jobs a failed test left behind."""
    leftovers = _our_processes(repo_uuid)
    deadline = time.monotonic() + grace
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = _our_processes(repo_uuid)
    return leftovers


def _end_left(leftovers: list) -> None:
    """End what a test left running, and fail it for that."""
    for proc in leftovers:
        try:
            proc.kill()
        except Exception:
            pass
    assert not leftovers, f"processes left running by this test: {[p.pid for p in leftovers]}"


def _our_processes(repo_uuid: str) -> list:
    import psutil

    from ganga_like.backends.runtime import procs

    found = []
    for pid, _created, _marker in procs.find_by_marker(repo_uuid + ":"):
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_of_ours_left_running():
    """After the whole suite, no process carrying a ganga_like marker is alive."""
    yield
    import psutil

    from ganga_like.backends.runtime import procs

    leaked = []
    for pid, created, marker in procs.find_by_marker(""):
        if marker.split(":")[0] not in TEST_REPOSITORIES:
            continue  # someone else's work on this machine: not ours to judge
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                leaked.append((pid, marker))
                procs.kill_tree(pid, created, grace=0.5)
        except psutil.NoSuchProcess:
            pass
    assert not leaked, f"processes left running after the test suite: {leaked}"


@pytest.fixture(scope="session")
def slurm():
    """One real one-node Slurm for the whole test session (``tests/slurm_cluster.py``),
    stopped after it. Where Slurm cannot start, the tests that need it fail with the
    reason: CI installs Slurm (``.ci/run``) and must run them."""
    try:
        from tests import slurm_cluster
    except ImportError:  # pragma: no cover - depends on how pytest set sys.path
        import slurm_cluster  # type: ignore[no-redef]

    try:
        cluster = slurm_cluster.start()
    except slurm_cluster.SlurmUnavailable as error:
        pytest.fail(f"the tests marked slurm need a real Slurm, which cannot start here: {error}")
    yield cluster
    slurm_cluster.stop(cluster)
