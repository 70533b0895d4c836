"""Fixtures for backend tests: one local Ray per session, spec builders, a leak check.

Every process a test starts carries ``GANGA_LIKE_MARKER=<session prefix>...``;
after the session no such process may be alive.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterable, Sequence

import pytest

try:  # tests/ may or may not be a package; work either way
    from tests import ray_helpers
except ImportError:  # pragma: no cover - depends on how pytest set sys.path
    import ray_helpers  # type: ignore[no-redef]

from ganga_like.backends.base import SubjobSpec
from ganga_like.backends.runtime import procs

SESSION_PREFIX = f"gltest-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (reused if already initialised)."""
    session = ray_helpers.start_test_ray(num_cpus=2)
    yield session
    ray_helpers.stop_test_ray(session)


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
