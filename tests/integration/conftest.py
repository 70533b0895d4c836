"""Fixtures for the repository integration tests: real FileStorage / ZEO, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from ganga_like.config import Config
from ganga_like.repository import open_repository
from ganga_like.repository.storage import Connection, Repository


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts processes or commits thousands of records")


# The venv's interpreter (pytest runs under it), so child processes import ganga_like too.
PYTHON = sys.executable


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(root=str(tmp_path / "gl"))


@pytest.fixture
def repository(config) -> Iterator[Repository]:
    repo = open_repository(config)
    yield repo
    repo.close()


@pytest.fixture
def conn(repository) -> Iterator[Connection]:
    connection = repository.connect()
    yield connection
    connection.close()


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GANGA_LIKE_REPOSITORY", None)
    env.pop("GANGA_LIKE_READ_ONLY", None)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines must reach us before a kill
    env.update(extra or {})
    return env


@pytest.fixture
def run_python():
    """Run a snippet in a fresh interpreter; return the CompletedProcess (checked)."""

    def run(code: str, timeout: float = 60, check: bool = True, **env: str):
        proc = subprocess.run(
            [PYTHON, "-c", textwrap.dedent(code)],
            capture_output=True, text=True, timeout=timeout, env=_child_env(env),
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture
def spawn_python():
    """Start a snippet in a fresh interpreter (stdout piped); killed at teardown if alive."""
    started: list[subprocess.Popen] = []

    def spawn(code: str, script: str | None = None, **env: str) -> subprocess.Popen:
        """``script``: write the code to that file and run it (a one-line command line)."""
        code = textwrap.dedent(code)
        if script is not None:
            with open(script, "w") as handle:
                handle.write(code)
            argv = [PYTHON, script]
        else:
            argv = [PYTHON, "-c", code]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=_child_env(env),
        )
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
