"""Resource requests as a user meets them at ``submit()``: a request no machine could
ever hold is refused in one line naming what exists, the job stays new and nothing
runs; the job's ``priority``, checked as it is set."""

from __future__ import annotations

import pytest

from ganga_like.backends.local.config import Local
from ganga_like.backends.raycluster.config import RayCluster
from ganga_like.errors import InvalidValue, OperationRefused
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import GenericSplitter
from ganga_like.status import Status


@pytest.fixture
def session(shared_session):
    """One engine for the module (``shared_session``, tests/conftest.py)."""
    return shared_session


def _job(backend, splitter=None) -> Job:
    return Job(application=Executable(exe="/bin/true"), backend=backend, splitter=splitter)


def _refused(session, job: Job) -> str:
    with pytest.raises(OperationRefused) as info:
        session.submit(job)
    session.refresh()
    assert job.status is Status.NEW and job.submit_counter == 0
    assert all(sj.status is Status.NEW for sj in job.subjobs)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"job {job.id} (new): cannot submit: ")
    return message.split(": ", 1)[1].removeprefix("cannot submit: ")


def test_local_refuses_more_gpus_than_the_machine_has(session):
    why = _refused(session, _job(Local(gpus=3, gpu_ids=[0, 1])))
    assert why == ("asks for 3 GPUs; this machine has 2 (ids 0, 1); the job stays new: "
                   "ask for less in j.backend and submit again")


def test_local_refuses_more_cpus_than_its_concurrency_and_more_memory_than_the_machine(session):
    assert _refused(session, _job(Local(cpus=3, concurrency=2))).startswith(
        "asks for 3 CPUs; this machine has 2 (Local's concurrency)")
    assert "of memory; this machine has" in _refused(session, _job(Local(memory="64TB")))
    assert _refused(session, _job(Local(resources={"bignode": 1}))).startswith(
        "asks for 1 of resource 'bignode'; this machine has none")


def test_one_subjob_asking_too_much_refuses_the_job_and_names_the_subjob(session):
    job = _job(Local(gpu_ids=[0, 1]), GenericSplitter(attribute="backend.gpus", values=[0, 1, 5]))
    assert _refused(session, job).startswith(
        "subjob 2: asks for 5 GPUs; this machine has 2 (ids 0, 1); the job stays new: ask for less "
        "in j.splitter")


def test_raycluster_refuses_what_no_node_could_hold_naming_the_nodes(session):
    why = _refused(session, _job(RayCluster(gpus=3)))
    assert why.startswith("asks for 1 CPU, 3 GPUs; no node could ever hold it (node ")
    assert ": 2 CPUs, 2 GPUs, " in why  # the test Ray's one node, as Ray counts it


@pytest.mark.parametrize("value", ["high", 1.5, True, None])
def test_priority_is_a_whole_number(value):
    with pytest.raises(InvalidValue) as info:
        Job(priority=value)
    assert str(info.value).startswith(f"Job.priority = {value!r} is not valid: expected a whole number")
    assert Job(priority=-5).priority == -5 and Job().priority == 0
