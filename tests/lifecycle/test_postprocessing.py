"""Postprocessors and output files on the real Local backend, as a user sees them."""

from __future__ import annotations

import os

import pytest

from ganga_like.model.files import LocalFile
from ganga_like.model.postprocessors import CustomChecker, CustomMerger, FileChecker, Notifier, TextMerger
from ganga_like.status import Status

from .helpers import sh_job, statuses, wait_for


@pytest.fixture
def session(shared_session):
    """One engine for the module (``shared_session``, tests/conftest.py)."""
    return shared_session


def _merged(job, name: str = "stdout") -> str:
    return os.path.join(job.workspace, "output", name)


def _wait_merged(session, job, name: str = "stdout") -> str:
    # The master turns final before its mergers run (they run after that commit).
    path = _merged(job, name)
    wait_for(lambda: os.path.exists(path), timeout=20)
    return open(path).read()


def test_filechecker_fails_the_subjob_whose_stdout_has_error(session):
    job = sh_job(["echo all good", "echo 'ERROR: no luck'", "echo fine; echo ERROR >&2"],
                 postprocessors=[FileChecker(files=["stdout"], searchStrings=["ERROR"])])
    session.submit(job)
    assert session.wait([job], timeout=60) == [Status.FAILED]
    assert statuses(job) == ["completed", "failed", "completed"]
    bad = job.subjobs[1]
    assert bad.exit_code == 0 and bad.reason == "FileChecker: 'ERROR' found in stdout"
    assert [h[2] for h in bad.history][-2:] == ["completing", "failed"]


def test_customchecker_decides_per_subjob(session, tmp_path):
    script = tmp_path / "check.py"
    script.write_text(
        "import os\n"
        "def check(job):\n"
        "    text = open(os.path.join(job.workdir, 'output', 'stdout')).read()\n"
        "    if 'boom' in text:\n"
        "        raise RuntimeError('cannot judge ' + text.strip())\n"
        "    return int(text) % 2 == 0\n")
    job = sh_job(["echo 2", "echo 3", "echo boom"], postprocessors=[CustomChecker(module=str(script))])
    session.submit(job)
    session.wait([job], timeout=60)
    assert statuses(job) == ["completed", "failed", "failed"]
    assert job.subjobs[1].reason == "CustomChecker check.py: check(job) returned False"
    assert job.subjobs[2].reason == "CustomChecker check.py: RuntimeError: cannot judge boom"


def test_textmerger_merges_after_the_master_completes(session, tmp_path):
    log = tmp_path / "notified"
    job = sh_job([f"echo line-{i}" for i in range(3)], postprocessors=[
        Notifier(command=["/bin/sh", "-c", f"echo {{id}} {{status}} >> {log}"]),
        TextMerger(files=["stdout"])])
    session.submit(job)
    assert session.wait([job], timeout=60) == [Status.COMPLETED]
    lines = _wait_merged(session, job).splitlines()
    assert lines[0].startswith(f"# TextMerger: 'stdout' of 3 subjobs of job {job.id}")
    assert [line for line in lines if not line.startswith("#")] == ["line-0", "line-1", "line-2"]
    assert sum(line.startswith("# ---- subjob") for line in lines) == 3
    wait_for(lambda: log.exists() and log.read_text())
    assert log.read_text() == f"{job.id} completed\n"  # once, after the merger


def test_textmerger_refuses_a_failed_subjob_unless_ignorefailed(session):
    scripts = ["echo a", "echo b; exit 2"]
    strict = sh_job(scripts, postprocessors=[TextMerger()])
    lenient = sh_job(scripts, postprocessors=[TextMerger(ignorefailed=True)])
    session.submit(strict)
    session.submit(lenient)
    assert session.wait([strict, lenient], timeout=60) == [Status.FAILED, Status.FAILED]
    text = _wait_merged(session, lenient)
    assert "a\n" in text and "b\n" not in text
    wait_for(lambda: (session.refresh() or True) and strict.reason.startswith("postprocessing:"))
    assert f"subjobs {strict.id}.1 failed" in strict.reason and "ignorefailed=True" in strict.reason
    assert not os.path.exists(_merged(strict))


def test_custommerger_and_localfile_outputs(session, tmp_path):
    merge = tmp_path / "merge.py"
    merge.write_text(
        "def mergefiles(file_list, output_file):\n"
        "    total = sum(int(open(f).read()) for f in file_list)\n"
        "    with open(output_file, 'w') as out:\n"
        "        out.write(f'{len(file_list)} files, total {total}\\n')\n")
    keep = tmp_path / "keep"
    job = sh_job([f"echo {i} > n.txt; echo x > other.dat" for i in (1, 2, 3)],
                 postprocessors=[CustomMerger(module=str(merge), files=["n.txt"])],
                 outputfiles=[LocalFile("*.txt", localDir=str(keep)), LocalFile("*.root")])
    session.submit(job)
    assert session.wait([job], timeout=60) == [Status.COMPLETED]
    assert _wait_merged(session, job, "n.txt") == "3 files, total 6\n"
    for index in range(3):
        assert (keep / str(index) / "n.txt").read_text() == f"{index + 1}\n"
        assert not (keep / str(index) / "other.dat").exists()
    sub = job.subjobs[0]
    assert sub.history[-1][3] == "no output file matched '*.root'"  # a warning, not a failure
    assert LocalFile("*.txt").collect(sub) == [os.path.join(sub.workdir, "output", "n.txt")]


def test_a_job_without_subjobs_is_checked_too(session):
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job

    job = Job(application=Executable(exe="/bin/echo", args=["ERROR here"]),
              postprocessors=[FileChecker(searchStrings=["ERROR"])], outputfiles=[LocalFile("stdout")])
    session.submit(job)
    assert session.wait([job], timeout=30) == [Status.FAILED]
    assert job.reason == "FileChecker: 'ERROR' found in stdout"


def _completing_entries(sub) -> tuple[tuple, tuple]:
    """The subjob's entries into and out of ``completing``."""
    into = next(h for h in sub.history if h[2] == "completing")
    out = next(h for h in sub.history if h[1] == "completing")
    return into, out


def test_nothing_to_collect_or_check_completes_in_the_batch_that_saw_it_finish(session):
    # The same two entries as a subjob whose step has work, recorded by one monitor batch
    # (one transaction): its `completing` is never committed on its own.
    job = sh_job(["true", "exit 0", "echo out"])
    session.submit(job)
    assert session.wait([job], timeout=60) == [Status.COMPLETED]
    for sub in job.subjobs:
        into, out = _completing_entries(sub)
        assert (into[4], out[2], out[4]) == ("backend", "completed", "monitor"), sub.history
        assert into[5] is not None and into[5] == out[5], (into, out)  # the same batch's cause


def test_an_output_file_or_a_checker_gets_its_own_step_after_the_commit(session):
    # Output files are collected, and checkers run, outside any transaction: `completing`
    # is committed first, the outcome by a later batch (another cause).
    for extra in ({"outputfiles": [LocalFile("stdout")]},
                  {"postprocessors": [FileChecker(files=["stdout"], searchStrings=["ERROR"])]}):
        job = sh_job(["echo fine"], **extra)
        session.submit(job)
        assert session.wait([job], timeout=60) == [Status.COMPLETED]
        into, out = _completing_entries(job.subjobs[0])
        assert out[2] == "completed" and into[5] != out[5], (extra, into, out)
