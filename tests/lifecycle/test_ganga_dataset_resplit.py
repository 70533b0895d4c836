"""j.inputdata (GangaDataset) on a real session, and the way to do what Ganga's
resplit() does (TestJob test_job_assignment/copy, TestSJSubmit test_f)."""

from __future__ import annotations

import pytest

from ganga_like.errors import JobError, ReadOnlyError
from ganga_like.gpi import ArgSplitter, Executable, GangaDataset, Job, LocalFile, jobs


def test_a_dataset_treated_as_inputfiles_reaches_every_subjob(session, tmp_path):
    (tmp_path / "data.txt").write_text("from the dataset\n")
    j = Job(application=Executable(exe="/bin/cat"),
            splitter=ArgSplitter(args=[["data.txt"], ["data.txt"]]))
    j.inputdata = GangaDataset(files=[LocalFile("data.txt", localDir=str(tmp_path))],
                               treat_as_inputfiles=True)
    j.submit()
    assert j.wait(timeout=60) == "completed"
    for sj in j.subjobs:
        assert sj.peek("stdout") == "from the dataset\n"
        assert sj.inputdata == j.inputdata  # a subjob shows its master's
    assert jobs(j.id).inputdata.files[0].namePattern == "data.txt"
    with pytest.raises(ReadOnlyError, match="inputdata"):
        j.inputdata = None
    copy = j.copy()
    assert copy.inputdata == j.inputdata and copy.status == "new"


def test_a_dataset_not_treated_as_inputfiles_is_stored_only(session, tmp_path):
    (tmp_path / "data.txt").write_text("x\n")
    j = Job(application=Executable(exe="/bin/cat", args=["data.txt"]),
            inputdata=GangaDataset(files=[LocalFile("data.txt", localDir=str(tmp_path))]))
    j.submit()
    assert j.wait(timeout=60) == "failed"  # cat: data.txt: no such file (not staged)
    assert jobs(j.id).inputdata.getFileNames() == ["data.txt"]


def test_resplit_is_refused_and_the_copy_route_does_the_work(session):
    j = Job(application=Executable(exe="/bin/echo"),
            splitter=ArgSplitter(args=[["1"], ["2"]]))
    j.submit()
    assert j.wait(timeout=60) == "completed"
    sj = j.subjobs[0]
    with pytest.raises(JobError, match=rf"job {j.id}.0 \(completed\): cannot resplit: .*"
                       rf"j2 = jobs\({j.id}\).subjobs\[0\].copy\(\)"):
        sj.resplit(ArgSplitter(args=[["a"], ["b"]]))
    assert len(j.subjobs) == 2 and sj.status == "completed"
    j2 = sj.copy()
    j2.splitter = ArgSplitter(args=[["a"], ["b"]])
    j2.submit()
    sj.freeze()
    assert j2.wait(timeout=60) == "completed"
    assert [s.peek("stdout") for s in j2.subjobs] == ["a\n", "b\n"]
    assert sj.status == "completed_frozen" and j.status == "completed"
