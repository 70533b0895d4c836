"""The workspace a job leaves (issue 22, point 4): a subjob that ended with 0 and wrote
nothing leaves no directory, only its lines in the master's collected trace; one that
wrote something or failed keeps its directory and its own status file."""

from __future__ import annotations

import os

from ganga_like.backends.runtime import spares, trace
from ganga_like.backends.runtime import status_file as sf
from ganga_like.status import Status

from .helpers import sh_job


def _dir_blocks(path: str) -> int:
    """Allocated bytes under ``path`` (what ``du`` counts)."""
    total = 0
    for where, dirs, files in os.walk(path):
        for name in dirs + files:
            total += os.lstat(os.path.join(where, name)).st_blocks * 512
    return total


def test_only_subjobs_with_something_to_keep_keep_a_directory(session):
    job = sh_job(["true", "echo out", "echo err >&2", "exit 3", "touch made", "true"])
    session.submit(job)
    assert session.wait([job], timeout=60) == [Status.FAILED]
    silent, out, err, failed, made, silent_too = job.subjobs
    master = job.workspace
    collected = os.path.join(master, trace.COLLECTED)
    # The tidy runs beside the actor's watcher: a moment after the final status at most.
    wait_until(lambda: not os.path.exists(silent.workdir) and not os.path.exists(silent_too.workdir))
    for kept in (out, err, failed, made):
        assert os.path.isfile(os.path.join(kept.workdir, trace.STATUS)), kept.fqid
        assert os.path.isdir(kept.outputdir), kept.fqid
    assert sorted(os.listdir(made.outputdir)) == ["made", "stderr", "stdout"]
    # Readable for every subjob: the tidied ones' lines are in the collected trace,
    # one line per change, prefixed with the subjob's id.
    for sub in job.subjobs:
        states = [info.state for info in trace.history(sub.workdir)]
        assert states[-1] == (sf.RUN_FAILED if sub is failed else sf.RUN_DONE), (sub.fqid, states)
        assert sf.RUNNING in states and states[0] == sf.CREATED, (sub.fqid, states)
    with open(collected) as handle:
        lines = handle.read().splitlines()
    assert sorted({line.split(" ", 1)[0] for line in lines}) == ["0", "5"]
    assert all(sf.parse_line(line.split(" ", 1)[1]) is not None for line in lines), lines
    assert any(line.startswith("5 ") and " RUN_DONE exit=0" in line for line in lines), lines
    # What a user reads of a tidied subjob: empty output, not an error.
    assert session.peek(silent) == "" and session.peek(silent, file="stderr") == ""
    assert session.peek(out).strip() == "out"


def test_silent_subjobs_cost_a_few_bytes_each_in_the_workspace(session):
    n = 300
    job = sh_job(["true"] * n, concurrency=4)
    session.submit(job)
    assert session.wait([job], timeout=120) == [Status.COMPLETED]
    wait_until(lambda: sorted(os.listdir(job.workspace)) == ["input", trace.COLLECTED], timeout=30)
    # input/ is the master's, as in Ganga; the rest is one line per status change.
    per_subjob = _dir_blocks(job.workspace) / n
    assert per_subjob < 400, per_subjob
    assert {info.state for sub in job.subjobs for info in trace.history(sub.workdir)[-1:]} == {sf.RUN_DONE}


def test_a_burst_of_silent_subjobs_runs_in_the_directories_the_earlier_ones_left(session, tmp_path):
    """Spare directories (runtime/spares.py): each subjob that wrote nothing hands its
    directory to a later one, so a burst uses about as many directories as run at once
    (on ext4, inodes freed and made again in bulk cost several times more)."""
    n, seen = 200, tmp_path / "inodes"
    # Each payload notes its own directory's inode outside its workspace: it stays silent.
    job = sh_job([f"stat -c %i .. >> {seen}"] * n, concurrency=2)
    session.submit(job)
    assert session.wait([job], timeout=120) == [Status.COMPLETED]
    inodes = seen.read_text().split()
    assert len(inodes) == n
    assert len(set(inodes)) <= 24, f"{len(set(inodes))} directories for {n} subjobs, 2 at once"
    wait_until(lambda: sorted(os.listdir(job.workspace)) == ["input", trace.COLLECTED], timeout=30)
    assert all(trace.history(sub.workdir)[-1].state == sf.RUN_DONE for sub in job.subjobs)
    # The quiet moment after the burst removes the spares and their directory.
    workspace = os.path.dirname(job.workspace)
    wait_until(lambda: not os.path.exists(os.path.join(workspace, spares.DIRECTORY)), timeout=30)


def test_an_actor_that_closes_tidies_what_it_had_left_for_a_quiet_moment(session):
    """The actor tidies once no run has ended for a second; closed before that (the
    service stops), it tidies what it had queued before it goes."""
    job = sh_job(["true"] * 8)
    session.submit(job)
    assert session.wait([job], timeout=60) == [Status.COMPLETED]
    session.context.backends.shutdown()  # what the session's close does
    assert [sub.fqid for sub in job.subjobs if os.path.exists(sub.workdir)] == []
    assert all(trace.history(sub.workdir)[-1].state == sf.RUN_DONE for sub in job.subjobs)


def wait_until(check, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
