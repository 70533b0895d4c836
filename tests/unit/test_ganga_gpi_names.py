"""Cases from Ganga's own GPI tests (ganga-devs/ganga, GangaCore/test/GPI) that a Ganga
user's script relies on, checked on in-memory objects."""

from __future__ import annotations

import pytest

from ganga_like.errors import GangaAttributeError, InvalidValue, JobError
from ganga_like.gpi import Interactive, Local  # as a script does: every backend is known
from ganga_like.model.application import Executable
from ganga_like.model.job import Job, JobTemplate
from ganga_like.model.slices import JobSlice, select_jobs
from ganga_like.model.splitters import ArgSplitter, GenericSplitter


def test_a_plugin_is_assigned_by_its_name_as_in_ganga():
    # TestTimeStamps: j.splitter = 'ArgSplitter'; j.splitter.args = [[], [], []]
    j = Job()
    j.splitter = "ArgSplitter"
    j.splitter.args = [[], [], []]
    assert isinstance(j.splitter, ArgSplitter) and j.splitter.args == [[], [], []]
    j.backend, j.application = "Interactive", "Executable"
    assert isinstance(j.backend, Interactive) and isinstance(j.application, Executable)
    assert isinstance(Job(splitter="GenericSplitter").splitter, GenericSplitter)


def test_an_unknown_plugin_name_is_one_line_naming_the_choices():
    with pytest.raises(InvalidValue) as info:
        Job().backend = "Condor"
    message = str(info.value)
    assert "\n" not in message
    assert "Job.backend = 'Condor' is not valid" in message
    assert "Hosts, Interactive, Local, RayCluster" in message
    with pytest.raises(InvalidValue, match="ArgSplitter, GenericSplitter"):
        Job().splitter = "Executable"


def _jobs() -> list[Job]:
    made = []
    for job_id, backend in enumerate([Local(), Interactive(), Local()]):
        job = Job(application=Executable(exe="/bin/true"), backend=backend, name=f"n{job_id}")
        job.id = job_id
        made.append(job)
    return made


def test_select_compares_the_type_of_a_class_or_an_object_as_ganga():
    # TestSlices.test_slice_select_attributes, TestSelect: select(application=Executable)
    jobs = _jobs()
    for wanted in (Executable, Executable(), "Executable"):
        assert select_jobs(jobs, application=wanted) == jobs
    assert [j.id for j in select_jobs(jobs, backend=Local)] == [0, 2]
    assert [j.id for j in select_jobs(jobs, backend=Interactive())] == [1]


def test_select_with_an_unknown_criterion_is_a_ganga_attribute_error_naming_the_choices():
    with pytest.raises(GangaAttributeError) as info:
        select_jobs(_jobs(), some_applications=Executable())
    message = str(info.value)
    assert "'some_applications'" in message and "\n" not in message
    assert "status, name, id, application, backend" in message
    with pytest.raises(GangaAttributeError):
        JobSlice(_jobs()).select(sttus="new")


def test_a_slice_is_indexed_by_job_id_and_by_name_as_jobs_is():
    # TestSelect: jobs.select(id=1)[1].id == 1; jobs.select(name='c')[2].name == 'c'
    jobs = JobSlice(_jobs())
    picked = jobs.select(id=1)
    assert len(picked) == 1 and picked[1].id == 1
    assert jobs.select(name="n2")[2].name == "n2"
    assert jobs["n1"].id == 1 and jobs[-1].id == 2


def test_a_template_refuses_submit_as_in_ganga():
    # TestSavannah76973: t = JobTemplate(j); t.submit() raises JobError
    t = JobTemplate()
    t.id = 0
    for verb in (t.submit, t.kill, t.resubmit):
        with pytest.raises(JobError) as info:
            verb()
        assert "a template is a description, not a job" in str(info.value)
        assert "Job(templates(0)).submit()" in str(info.value)
    with pytest.raises(JobError):
        t.force_status("failed")


def test_a_script_raises_gangas_exceptions_with_a_message_of_its_own():
    # Ganga's GPI test_all_exceptions: err_type("My Test Error"); scripts do the same
    import ganga_like.gpi as gpi
    from ganga_like.errors import GANGA_NAMES, InvalidValue, OperationRefused

    for name in GANGA_NAMES:
        error = getattr(gpi, name)("My Test Error")
        assert str(error) == "My Test Error", name
    try:
        raise gpi.JobError("no input found")
    except OperationRefused as caught:  # and our own handlers still catch it
        assert str(caught) == "no input found"
    # Built with their fields, ours keep their one line and their fields.
    error = InvalidValue("Job", "name", 3, "a string")
    assert str(error) == "Job.name = 3 is not valid: expected a string" and error.attribute == "name"
