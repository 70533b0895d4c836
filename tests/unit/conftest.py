"""Helpers for the unit tests: in-memory jobs and masters, no database, no Ray."""

from __future__ import annotations

import pytest

from ganga_like.engine.core import _split
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter


def build_master(n_subjobs: int, job_id: int = 7) -> Job:
    """A master split into ``n_subjobs`` new subjobs, exactly as ``submit()`` splits one."""
    master = Job(
        application=Executable(exe="/bin/echo", args=["base"]),
        splitter=ArgSplitter(args=[[str(i)] for i in range(n_subjobs)]),
    )
    master.id = job_id  # normally given by the registry; fqids need it
    _split(master)
    return master


def job_in(status: str, job_id: int = 1) -> Job:
    """A standalone job put directly in ``status`` (bypassing the table, to set up a case)."""
    job = Job()
    job.id = job_id
    job._status = status
    return job


# Exposed as fixtures rather than imported: tests/unit and tests/integration both have a
# conftest.py, and importing one by name from a test module would be ambiguous.
@pytest.fixture
def make_master():
    return build_master


@pytest.fixture
def make_job_in():
    return job_in
