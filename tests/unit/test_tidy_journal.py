"""The tidier's journal: what an actor did not get to tidy is tidied by the next one.

Real files and real processes (a dead owner is a process that really ended); no Ray.
"""

from __future__ import annotations

import os
import subprocess
import time

from ganga_like.backends.runtime import procs, tidy_journal, trace
from ganga_like.backends.runtime import status_file as sf


def _ended_subjob(workspace, master: int, sub: int) -> str:
    """A subjob directory as the wrapper leaves it after exit 0 with no output."""
    workdir = workspace / str(master) / str(sub)
    (workdir / "output").mkdir(parents=True)
    (workdir / "output" / "stdout").touch()
    (workdir / "output" / "stderr").touch()
    lines = [sf.StatusInfo(sf.CREATED, "starting", time.time()).line(),
             sf.StatusInfo(sf.RUN_DONE, "exit=0", time.time()).line()]
    (workdir / "status").write_bytes(b"".join(line + b"\n" for line in lines))
    return str(workdir)


def _dead_owner_name() -> str:
    child = subprocess.Popen(["sleep", "5"])
    name = f"{child.pid}-{procs.start_time(child.pid):.2f}"
    child.kill()
    child.wait()
    return name


def _journal_lines(workspace) -> list[str]:
    directory = workspace / tidy_journal.DIRECTORY
    if not directory.exists():
        return []
    return [line for path in sorted(directory.iterdir()) for line in path.read_text().splitlines()]


def test_a_queued_subjob_is_journalled_until_it_is_tidied(tmp_path):
    workdir = _ended_subjob(tmp_path, 1, 0)
    tidier = trace._Tidier()
    tidier.later(workdir)
    assert _journal_lines(tmp_path) == [workdir]
    tidier.finish(budget=10)
    assert not os.path.exists(workdir)
    assert [info.state for info in trace.history(workdir)] == [sf.CREATED, sf.RUN_DONE]
    assert not (tmp_path / tidy_journal.DIRECTORY).exists()  # the directory too, once empty


def test_the_journals_directory_stays_while_another_process_journal_is_in_it(tmp_path):
    directory = tmp_path / tidy_journal.DIRECTORY
    directory.mkdir()
    live = subprocess.Popen(["sleep", "30"])
    try:
        other = directory / f"{live.pid}-{procs.start_time(live.pid):.2f}"
        other.write_text(_ended_subjob(tmp_path, 2, 0) + "\n")
        tidier = trace._Tidier()
        tidier.later(_ended_subjob(tmp_path, 1, 0))
        tidier.finish(budget=10)
        assert sorted(directory.iterdir()) == [other]  # ours gone, the live one's kept
    finally:
        live.kill()
        live.wait()


def test_a_journal_is_made_again_when_a_drain_removes_the_directory_under_it(tmp_path, monkeypatch):
    """Another process's drain may remove the empty directory between our makedirs and
    our open: the journal is made again, nothing is left unjournalled."""
    directory = tmp_path / tidy_journal.DIRECTORY
    real_makedirs = os.makedirs
    removed = []

    def makedirs_then_lose_it(path, *args, **kwargs):
        real_makedirs(path, *args, **kwargs)
        if str(path) == str(directory) and len(removed) < 2:
            os.rmdir(path)  # as a drain in another process does, when it is empty
            removed.append(path)

    monkeypatch.setattr(tidy_journal.os, "makedirs", makedirs_then_lose_it)
    journal = tidy_journal.Journal(str(tmp_path))
    workdir = _ended_subjob(tmp_path, 1, 0)
    journal.add(workdir)
    assert len(removed) == 2
    assert _journal_lines(tmp_path) == [workdir]
    journal.drained()
    assert not directory.exists()


def test_what_a_closing_actor_had_no_time_for_stays_journalled(tmp_path):
    workdirs = [_ended_subjob(tmp_path, 1, sub) for sub in range(3)]
    tidier = trace._Tidier()
    for workdir in workdirs:
        tidier.later(workdir)
    tidier.finish(budget=0)
    assert all(os.path.isdir(w) for w in workdirs)
    assert _journal_lines(tmp_path) == workdirs


def test_the_journal_of_a_process_that_ended_is_claimed_and_its_subjobs_tidied(tmp_path):
    left = [_ended_subjob(tmp_path, 1, sub) for sub in range(3)]
    directory = tmp_path / tidy_journal.DIRECTORY
    directory.mkdir()
    dead = directory / _dead_owner_name()
    dead.write_text("".join(w + "\n" for w in left))
    # A journal of a live process is its own: not claimed.
    live = subprocess.Popen(["sleep", "30"])
    try:
        kept = directory / f"{live.pid}-{procs.start_time(live.pid):.2f}"
        other = _ended_subjob(tmp_path, 2, 0)
        kept.write_text(other + "\n")

        tidier = trace._Tidier()
        tidier.later(_ended_subjob(tmp_path, 3, 0))  # the first tidying in this workspace claims
        tidier.finish(budget=10)

        assert not any(os.path.exists(w) for w in left), "the dead actor's subjobs were not tidied"
        assert [info.state for info in trace.history(left[0])] == [sf.CREATED, sf.RUN_DONE]
        assert not dead.exists()
        assert os.path.isdir(other) and kept.read_text() == other + "\n"
        assert _journal_lines(tmp_path) == [other]
    finally:
        live.kill()
        live.wait()


def test_tidying_again_what_was_tidied_changes_nothing(tmp_path):
    workdir = _ended_subjob(tmp_path, 1, 0)
    assert trace.tidy(workdir)
    collected, _ = trace.collected_path(workdir)
    before = open(collected, "rb").read()
    assert not trace.tidy(workdir)
    assert open(collected, "rb").read() == before
