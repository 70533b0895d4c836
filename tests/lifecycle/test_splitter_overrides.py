"""A splitter's backend values per subjob, as Ganga's GenericSplitter sets them.

A backend field that the backend carries in each subjob's spec (the resource
request ``cpus``, ``gpus``, ``memory``, ``resources`` on every backend; RayCluster's
``max_retries``; every Hosts request field) reaches that subjob's run. A field that
chooses the backend's actor (Local's ``concurrency`` and ``gpu_ids``, RayCluster's
``address``) is the whole job's: ``submit()``
refuses a splitter that sets it, in one line naming what can differ, and the job
stays new. Also here: ``Interactive()`` refuses an executable that cannot run, as
``Local`` does.
"""

from __future__ import annotations

import pytest

from ganga_like.backends.hosts.config import Hosts
from ganga_like.backends.local.config import Local
from ganga_like.backends.local.interactive import Interactive
from ganga_like.backends.raycluster.config import RayCluster
from ganga_like.backends.resources import Request
from ganga_like.engine.operations.submit import backend_fields_per_subjob, specs_for, split
from ganga_like.errors import ApplicationConfigurationError, InvalidValue, SplitterError
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import GenericSplitter
from ganga_like.status import Status


@pytest.fixture
def session(shared_session):
    """One engine for the module (``shared_session``, tests/conftest.py)."""
    return shared_session


def _echo(backend, splitter) -> Job:
    return Job(application=Executable(exe="/bin/sh", args=["-c", "echo ran"]),
               backend=backend, splitter=splitter)


def test_which_backend_fields_can_differ_between_subjobs():
    request = ["cpus", "gpus", "memory", "resources"]
    assert backend_fields_per_subjob(Local()) == (request, ["concurrency", "gpu_ids"])
    assert backend_fields_per_subjob(RayCluster()) == ([*request, "max_retries"], ["address"])
    assert backend_fields_per_subjob(Hosts()) == (
        [*request, "label", "hosts", "dependencies", "atomic_group", "synch_count", "skip_verify",
         "reboot_before", "reboot_after", "group_wait"], [])
    assert backend_fields_per_subjob(Interactive()) == ([], [])


def test_a_raycluster_subjob_reserves_its_own_resources(session):
    """Subjob 0 asks for no GPU, subjob 1 for both of the test Ray's logical GPUs: each
    one's own request reached its task (Ray's ids in its CUDA_VISIBLE_DEVICES)."""
    job = Job(application=Executable(exe="/bin/sh", args=["-c", 'echo "[$CUDA_VISIBLE_DEVICES]"']),
              backend=RayCluster(num_cpus=0.5),
              splitter=GenericSplitter(multi_attrs={"backend.gpus": [0, 2], "backend.max_retries": [0, 2]}))
    session.submit(job)
    first, second = job.subjobs[0], job.subjobs[1]
    assert (first.backend.gpus, second.backend.gpus) == (0, 2)
    assert second.backend.max_retries == 2 and second.backend.num_cpus == 0.5
    assert session.wait([job], timeout=60) == [Status.COMPLETED]
    assert [session.peek(sj).strip() for sj in (first, second)] == ["[]", "[0,1]"]
    [spec] = specs_for(session.context, job, [second])
    assert spec.options == {"max_retries": 2} and spec.request == Request(0.5, 2)


def test_a_local_subjob_gets_its_own_gpu_ids(session):
    job = Job(application=Executable(exe="/bin/sh", args=["-c", 'echo "[$CUDA_VISIBLE_DEVICES]"']),
              backend=Local(gpu_ids=[0, 1]),
              splitter=GenericSplitter(attribute="backend.gpus", values=[0, 1, 2]))
    session.submit(job)
    assert session.wait([job], timeout=60) == [Status.COMPLETED]
    shown = [session.peek(sj).strip() for sj in job.subjobs]
    assert shown[0] == "[]" and shown[1] in ("[0]", "[1]") and shown[2] == "[0,1]"
    assert [tuple(sj.handle[11]) for sj in job.subjobs] == [(), (int(shown[1][1]),), (0, 1)]  # stored


def test_a_hosts_subjob_asks_for_its_own_label(session):
    job = _echo(Hosts(label="x86_64", synch_count=1),
                GenericSplitter(attribute="backend.label", values=["x86_64", "arm64"]))
    session.register(job)
    session.write(lambda: split(job))
    specs = specs_for(session.context, job, list(job.subjobs))
    assert [s.options["label"] for s in specs] == ["x86_64", "arm64"]
    assert all(s.options["synch_count"] == 1 for s in specs)


@pytest.mark.parametrize("backend, splitter, why", [
    (Local(), GenericSplitter(attribute="backend.concurrency", values=[1, 2]),
     "GenericSplitter.attribute = 'backend.concurrency' is not valid: expected a field a "
     "subjob can have its own value of: application.<field>, backend.cpus, backend.gpus, "
     "backend.memory, backend.resources (on Local, concurrency, gpu_ids choose the one actor "
     "that runs every subjob of the job)"),
    (RayCluster(), GenericSplitter(multi_attrs={"application.args": [["1"], ["2"]],
                                                "backend.address": ["auto", "10.0.0.1:6379"]}),
     "GenericSplitter.multi_attrs = 'backend.address' is not valid: expected a field a "
     "subjob can have its own value of: application.<field>, backend.cpus, backend.gpus, "
     "backend.memory, backend.resources, backend.max_retries (on RayCluster, address chooses the one "
     "actor that runs every subjob of the job)"),
])
def test_a_backend_field_that_chooses_the_actor_is_refused_and_the_job_stays_new(
        session, backend, splitter, why):
    job = _echo(backend, splitter)
    with pytest.raises(SplitterError) as info:
        session.submit(job)
    assert isinstance(info.value, InvalidValue)
    assert str(info.value) == why
    session.refresh()
    assert job.status is Status.NEW and job.subjob_counts == {} and job.submit_counter == 0


def test_interactive_refuses_a_missing_executable_at_submit_and_the_job_stays_new(session, capsys):
    job = Job(application=Executable(exe="/no/such/program", args=[]), backend=Interactive())
    with pytest.raises(ApplicationConfigurationError) as info:
        job.submit()  # the GPI verb: Interactive would wait and print
    message = str(info.value)
    assert "/no/such/program does not exist" in message and "\n" not in message
    session.refresh()
    assert job.status is Status.NEW and job.submit_counter == 0 and job.handle is None
    assert capsys.readouterr().out == ""  # nothing ran, nothing shown
