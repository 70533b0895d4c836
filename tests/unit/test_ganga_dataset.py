"""j.inputdata and GangaDataset (Ganga's TestJob test_job_assignment / test_job_copy),
and j.resplit(), which is refused with what to do instead."""

from __future__ import annotations

import os

import pytest
from persistent import Persistent

from ganga_like.errors import InvalidValue, JobError, ReadOnlyError
from ganga_like.model.datasets import GangaDataset
from ganga_like.model.files import File, LocalFile, stage_inputs
from ganga_like.model.job import Job
from ganga_like.status import Status


def test_inputdata_defaults_to_none_and_takes_a_dataset():
    j = Job()
    assert j.inputdata is None
    j.inputdata = GangaDataset()
    j.inputdata.files = [LocalFile("*.txt")]
    assert isinstance(j.inputdata, GangaDataset) and len(j.inputdata.files) == 1
    assert isinstance(j.inputdata.files[0], LocalFile)
    assert j.inputdata.files[0].namePattern == "*.txt"
    assert not j.inputdata.treat_as_inputfiles
    j.inputdata = None
    assert j.inputdata is None
    j.inputdata = "GangaDataset"  # by name, as Ganga's plugins
    assert isinstance(j.inputdata, GangaDataset) and len(j.inputdata) == 0


def test_bad_values_are_one_line_naming_the_choices():
    with pytest.raises(InvalidValue, match=r"Job.inputdata = .*expected one of the datasets "
                       r"\(e.g. GangaDataset\(files=\[LocalFile\('x.txt'\)\]\), or None\)"):
        Job().inputdata = LocalFile("x.txt")
    with pytest.raises(InvalidValue, match="is not a file object"):
        GangaDataset(files=["x.txt"])
    with pytest.raises(InvalidValue, match="expected True or False"):
        GangaDataset(treat_as_inputfiles="yes")
    with pytest.raises(InvalidValue, match="Job.inputdata = 'Nope'.*GangaDataset"):
        Job().inputdata = "Nope"


def test_copy_copies_the_dataset_and_equality_compares_it():
    j = Job(inputdata=GangaDataset(files=[LocalFile("*.txt")], treat_as_inputfiles=True))
    c = j.copy()
    assert c == j and c.inputdata == j.inputdata and c.inputdata is not j.inputdata
    assert c.inputdata.files[0] is not j.inputdata.files[0]
    assert c.inputdata.treat_as_inputfiles
    c.inputdata.files = [LocalFile("*.dat")]
    assert c != j and j.inputdata.files[0].namePattern == "*.txt"
    # the template form, Job(j), copies it too
    assert Job(j).inputdata == j.inputdata


def test_print_shows_inputdata():
    j = Job(inputdata=GangaDataset(files=[LocalFile("a.txt")]))
    text = str(j)
    assert "  inputdata = GangaDataset (\n    files = [\n      LocalFile (\n" in text
    assert "namePattern = 'a.txt'" in text and "treat_as_inputfiles = False" in text
    assert "inputdata = None" in str(Job())


def test_old_records_load_without_inputdata():
    j = Job()
    j.__dict__.pop("inputdata", None)
    assert j.inputdata is None and "inputdata" not in j.__dict__


def test_list_methods_are_assignments():
    ds = GangaDataset([LocalFile("a.txt")])
    ds.append(LocalFile("b.txt"))
    ds.extend([LocalFile("a.txt"), LocalFile("c.txt")], unique=True)
    assert ds.getFileNames() == ["a.txt", "b.txt", "c.txt"] and len(ds) == 3
    assert ds[1].namePattern == "b.txt" and ds[1:].getFileNames() == ["b.txt", "c.txt"]
    assert bool(GangaDataset()) and GangaDataset().isEmpty() and not ds.isEmpty()
    ds.files.append(LocalFile("d.txt"))  # the files list edited in place: an assignment
    assert ds.getFileNames() == ["a.txt", "b.txt", "c.txt", "d.txt"]


def _submitted(job: Job) -> Job:
    Persistent.__setattr__(job, "_status", Status.SUBMITTED.value)
    return job


def test_inputdata_is_read_only_once_submitted():
    j = _submitted(Job(inputdata=GangaDataset(files=[LocalFile("a.txt")])))
    with pytest.raises(ReadOnlyError, match="inputdata"):
        j.inputdata = GangaDataset()
    with pytest.raises(ReadOnlyError, match="dataset.files"):
        j.inputdata.files = []
    with pytest.raises(ReadOnlyError, match="dataset.files.namePattern"):
        j.inputdata.files[0].namePattern = "b.txt"
    with pytest.raises(ReadOnlyError, match="dataset.treat_as_inputfiles"):
        j.inputdata.treat_as_inputfiles = True
    assert j.inputdata.files[0].namePattern == "a.txt"


def test_treat_as_inputfiles_stages_the_files_like_inputfiles(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("A")
    (src / "b.dat").write_text("B")
    (src / "extra.txt").write_text("X")
    work = tmp_path / "work"
    dataset = GangaDataset(files=[LocalFile("a.txt", localDir=str(src)),
                                  File(str(src / "b.dat"))])
    j = Job(inputfiles=[LocalFile("extra.txt", localDir=str(src))], inputdata=dataset)
    # stored only: the inputfiles are staged, the dataset's files are not
    assert [os.path.basename(p) for p in stage_inputs(j, str(work))] == ["extra.txt"]
    assert not (work / "input" / "a.txt").exists()
    j.inputdata.treat_as_inputfiles = True
    staged = stage_inputs(j, str(work))
    assert [os.path.basename(p) for p in staged] == ["extra.txt", "a.txt", "b.dat"]
    assert (work / "output" / "a.txt").read_text() == "A"
    assert (work / "input" / "b.dat").read_text() == "B"
    j.inputdata.files = [LocalFile("missing.txt", localDir=str(src))]
    with pytest.raises(InvalidValue, match="missing.txt"):
        stage_inputs(j, str(work))


def test_resplit_is_refused_naming_what_to_do_instead():
    j = Job()
    with pytest.raises(JobError, match=r"cannot resplit: .*j2 = j.copy\(\); "
                       r"j2.splitter = <splitter>; j2.submit\(\)"):
        j.resplit()
