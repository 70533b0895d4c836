"""Ganga's idioms a first script relies on (issue 19), on a real session (FileStorage,
the test Ray, real processes), driven through the GPI as Ganga's tutorial does."""

from __future__ import annotations

import pytest

from ganga_like.gpi import Executable, Job, LocalFile


@pytest.fixture
def session(shared_session):
    """One engine for the module (``shared_session``, tests/conftest.py)."""
    return shared_session


def _stored(session, job_id):
    """The job as another connection reads it: what was committed."""
    conn = session.repository.connect()
    try:
        job = conn.jobs.get(job_id)
        return list(job.application.args), [f.namePattern for f in job.inputfiles]
    finally:
        conn.close()


def test_lists_edited_in_place_are_saved_and_used_by_the_run(session, tmp_path):
    (tmp_path / "in.txt").write_text("data\n")
    j = Job(application=Executable(exe="/bin/echo", args=["a"]))
    j.application.args.append("b")
    j.application.args[0] = "first"
    j.application.args += ["last"]
    j.inputfiles += [LocalFile(str(tmp_path / "in.txt"))]
    assert _stored(session, j.id) == (["first", "b", "last"], [str(tmp_path / "in.txt")])
    j.submit()
    assert j.wait(timeout=60) == "completed"
    assert j.peek("stdout") == "first b last\n"


def _finished(job, timeout=60):
    assert job.wait(timeout=timeout) in ("completed", "failed", "killed")
    return [s.status for s in job.subjobs]


def test_resubmit_of_a_master_as_ganga_does_it(session, capsys):
    from ganga_like.gpi import ArgSplitter, config

    j = Job(application=Executable(exe="/bin/sh"),
            splitter=ArgSplitter(args=[["-c", "exit 0"], ["-c", "exit 0"]]))
    j.submit()
    assert _finished(j) == ["completed", "completed"]
    # Ganga's default (resubmitOnlyFailedSubjobs = True): no failed subjob, nothing to do,
    # no error; the line says so and what would take them.
    j.resubmit()
    assert [s.info.submit_counter for s in j.subjobs] == [1, 1]
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"job {j.id}: nothing to resubmit: none of its subjobs failed")
    assert "resubmitOnlyFailedSubjobs" in line and "\n" not in line
    # Ganga's own test (test_statetime_local) sets the option: every finished subjob goes.
    config["Configuration"]["resubmitOnlyFailedSubjobs"] = False
    try:
        assert config["Configuration"]["resubmitOnlyFailedSubjobs"] is False
        j.resubmit()
        assert _finished(j) == ["completed", "completed"]
        assert [s.info.submit_counter for s in j.subjobs] == [2, 2]
    finally:
        config["Configuration"]["resubmitOnlyFailedSubjobs"] = True


def test_a_killed_master_resubmits_every_subjob_with_the_option_off(session):
    from ganga_like.gpi import ArgSplitter, config

    j = Job(application=Executable(exe="/bin/sleep"), splitter=ArgSplitter(args=[["30"], ["30"]]))
    j.submit()
    j.subjobs.kill()  # Ganga's slice verb on the subjobs
    assert j.status == "killed" and [s.status for s in j.subjobs] == ["killed", "killed"]
    config["Configuration"]["resubmitOnlyFailedSubjobs"] = False
    try:
        j.resubmit()
        assert {s.status for s in j.subjobs} <= {"submitting", "submitted", "running"}
        j.kill()
    finally:
        config["Configuration"]["resubmitOnlyFailedSubjobs"] = True


def test_a_session_option_takes_only_true_or_false_in_one_line():
    import pytest

    from ganga_like.errors import ConfigurationError
    from ganga_like.gpi import config

    with pytest.raises(ConfigurationError, match=r"takes True or False, not 'no'$"):
        config["Configuration"]["resubmitOnlyFailedSubjobs"] = "no"
    with pytest.raises(ConfigurationError, match="cannot be changed in a running session"):
        config["Configuration"]["gangadir"] = "/tmp"


def test_a_file_checker_built_empty_is_filled_later_or_fails_the_job(session):
    from ganga_like.gpi import FileChecker

    empty = FileChecker(files=[], searchStrings=["ERROR"])  # accepted, as in Ganga
    j = Job(application=Executable(exe="/bin/echo", args=["fine"]), postprocessors=[empty])
    j.submit()
    assert j.wait(timeout=60) == "failed"
    assert "FileChecker has no files" in j.reason
    filled = FileChecker(files=[], searchStrings=["ERROR"])
    filled.files.append("stdout")  # a checker built first and filled later
    k = Job(application=Executable(exe="/bin/echo", args=["fine"]), postprocessors=[filled])
    k.submit()
    assert k.wait(timeout=60) == "completed"


def test_a_verb_given_a_wrong_kind_says_so_in_one_line_and_the_session_goes_on(session):
    import pytest

    from ganga_like.errors import InvalidValue

    j = Job(application=Executable(exe="/bin/echo", args=["x"]))
    j.submit()
    with pytest.raises(InvalidValue, match=r"^wait\(\)\.timeout = 'soon' is not valid"):
        j.wait(timeout="soon")
    assert j.wait(timeout=60) == "completed" and j.peek(lines=1) == "x\n"


def test_export_and_load_take_a_file_object_and_ganga_s_modes(session, tmp_path, monkeypatch):
    import pytest

    from ganga_like.errors import InvalidValue
    from ganga_like.gpi import export, jobs, load

    monkeypatch.chdir(tmp_path)
    j = Job(application=Executable(exe="/bin/echo", args=["one"]), name="first")
    k = Job(application=Executable(exe="/bin/echo", args=["two"]), name="second")
    assert export(j, LocalFile("jobs.txt")) == 1  # relative to the current directory
    assert export([k], LocalFile("jobs.txt", localDir=str(tmp_path)), "a") == 1  # appended
    before = len(jobs)
    loaded = load(LocalFile("jobs.txt"))
    assert [x.name for x in loaded] == ["first", "second"] and len(jobs) == before + 2
    assert loaded[1].application.args == ["two"] and loaded[1].status == "new"
    assert load(str(tmp_path / "jobs.txt"), returnList=False) is None  # stored all the same
    assert len(jobs) == before + 4
    with pytest.raises(InvalidValue, match=r"^export\(\)\.mode = 'x' is not valid"):
        export(j, "other.txt", "x")
    with pytest.raises(InvalidValue, match=r"^export\(\)\.filename = 3 is not valid"):
        export(j, 3)
    with pytest.raises(InvalidValue, match=r"^export\(\)\.item = "):
        export(LocalFile("jobs.txt"), "other.txt")  # the arguments the wrong way round
