"""Cases from Ganga's own GPI tests (ganga-devs/ganga, GangaCore/test/GPI) on a real
session: the registry verbs and templates a Ganga script uses."""

from __future__ import annotations

import pytest

from ganga_like.errors import JobError
from ganga_like.gpi import ArgSplitter, Executable, Job, JobTemplate, Local, jobs


def test_jobs_copy_copies_every_job_and_select_takes_a_class(session):
    # TestSlices.test_slice_copy: s = jobs.copy(); len(jobs) == 2 * len(s)
    first = Job(application=Executable(exe="/bin/true"), backend=Local(), name="a")
    Job(application=Executable(exe="/bin/echo"), name="b")
    copies = jobs.copy()
    assert len(jobs) == 4 and len(copies) == 2
    assert [j.name for j in copies] == ["a", "b"] and copies.ids() == [2, 3]
    assert jobs(2).application.exe == "/bin/true" and jobs(2) == first
    assert len(jobs.select(application=Executable)) == 4
    assert jobs.select(name="b")[3].id == 3  # a slice is indexed by job id, as jobs is


def test_submitting_a_template_is_refused_and_submits_no_job(session):
    # TestSavannah76973: the template's id is also a job's id; that job must not run
    j = Job(application=Executable(exe="/bin/true"))
    t = JobTemplate(j)
    assert t.status == "template" and t.id == j.id
    with pytest.raises(JobError, match="a template is a description"):
        t.submit()
    assert j.status == "new" and t.status == "template"
    Job(t).submit()


def test_a_submitted_job_has_its_inputdir_without_input_files(session):
    # TestSavannah10064 / 13404: scripts put files in j.inputdir once it is submitted
    import os

    j = Job(application=Executable(exe="/bin/true"))
    assert not os.path.exists(j.inputdir)
    j.submit()
    assert os.path.isdir(j.inputdir)
    assert j.wait(timeout=60) == "completed"
    split = Job(application=Executable(exe="/bin/echo"),
                splitter=ArgSplitter(args=[["1"], ["2"]]))
    split.submit()
    assert os.path.isdir(split.inputdir) and not os.path.exists(split.subjobs[0].inputdir)
    assert split.wait(timeout=60) == "completed"
