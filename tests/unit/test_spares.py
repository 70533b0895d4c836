"""Spare directories (``backends/runtime/spares.py``): a silent subjob's directory is
taken again by the next subjob that starts in its workspace, by rename, so a burst of
silent subjobs neither frees nor allocates an inode per subjob.

Real files and real processes (a dead owner is a process that really ended); no Ray.
The module's pool is this process's: each test has its own workspace, and keeps and
takes within milliseconds (the tidier releases spares after a quiet second).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganga_like.backends.runtime import outcome, procs, spares, tidy_journal, trace
from ganga_like.backends.runtime import status_file as sf


def _line(state: str, note: str = "") -> bytes:
    return sf.StatusInfo(state, note, time.time()).line()


def _run(workdir: str, final: bytes, stdout: bytes = b"", extra: str | None = None) -> None:
    """Start a subjob in ``workdir`` as the Local actor does, and end it as the
    wrapper would: its outputs, then its final line."""
    outcome.prepare(workdir, _line(sf.CREATED, "starting"))
    out = os.path.join(workdir, "output")
    for name, data in (("stdout", stdout), ("stderr", b"")):
        fd = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
    if extra is not None:
        with open(os.path.join(out, extra), "w") as handle:
            handle.write("made")
    sf.append_line(os.path.join(workdir, "status"), _line(sf.RUNNING, "pid=1 wrapper=2 marker=m") + b"\n")
    sf.append_line(os.path.join(workdir, "status"), final + b"\n")


def _spare_dir(workspace) -> str:
    return os.path.join(workspace, spares.DIRECTORY)


def test_the_next_subjob_starts_in_the_directory_a_silent_one_left(tmp_path):
    first, second = str(tmp_path / "1" / "0"), str(tmp_path / "1" / "1")
    _run(first, _line(sf.RUN_DONE, "exit=0"))
    inode = os.stat(first).st_ino
    trace.tidy_soon(first)

    assert not os.path.exists(first)
    assert [info.state for info in trace.history(first)] == [sf.CREATED, sf.RUNNING, sf.RUN_DONE]
    assert len(os.listdir(_spare_dir(tmp_path))) == 1

    outcome.prepare(second, _line(sf.CREATED, "starting"))
    assert os.stat(second).st_ino == inode  # the same directory: no inode freed or made
    assert os.listdir(_spare_dir(tmp_path)) == []
    assert [info.state for info in trace.history(second)] == [sf.CREATED]
    assert sorted(os.listdir(os.path.join(second, "output"))) == ["stderr", "stdout"]
    assert all(os.path.getsize(os.path.join(second, "output", name)) == 0 for name in ("stdout", "stderr"))
    # The first subjob still reads as it ended: its lines are in the collected trace.
    assert trace.last(first).state == sf.RUN_DONE and trace.tidied(first)


@pytest.mark.parametrize("how", ["wrote stdout", "made a file", "failed"])
def test_a_subjob_with_something_to_keep_keeps_its_directory(tmp_path, how):
    workdir = str(tmp_path / "1" / "0")
    if how == "wrote stdout":
        _run(workdir, _line(sf.RUN_DONE, "exit=0"), stdout=b"out\n")
    elif how == "made a file":
        _run(workdir, _line(sf.RUN_DONE, "exit=0"), extra="made")
    else:
        _run(workdir, _line(sf.RUN_FAILED, "exit=3"))
    trace.tidy_soon(workdir)
    assert os.path.isfile(os.path.join(workdir, "status"))
    assert not os.path.exists(_spare_dir(tmp_path)) or os.listdir(_spare_dir(tmp_path)) == []
    assert not os.path.exists(os.path.join(tmp_path, tidy_journal.DIRECTORY))  # nothing queued


@pytest.mark.parametrize("change", ["stdout linked elsewhere", "stdout a symlink", "output not writable",
                                    "stdout not writable"])
def test_a_silent_directory_a_payload_changed_is_removed_not_reused(tmp_path, change):
    workdir = str(tmp_path / "1" / "0")
    _run(workdir, _line(sf.RUN_DONE, "exit=0"))
    stdout = os.path.join(workdir, "output", "stdout")
    if change == "stdout linked elsewhere":
        os.link(stdout, str(tmp_path / "elsewhere"))
    elif change == "stdout a symlink":
        os.unlink(stdout)
        os.symlink("/dev/null", stdout)
    elif change == "output not writable":
        os.chmod(os.path.join(workdir, "output"), 0o555)
    else:
        os.chmod(stdout, 0o444)
    trace.tidy_soon(workdir)
    spared = os.listdir(_spare_dir(tmp_path)) if os.path.exists(_spare_dir(tmp_path)) else []
    assert spared == [], change
    if change == "stdout a symlink":  # not silent at all: kept as it is
        assert os.path.islink(stdout)
    else:  # silent: its lines collected and its directory removed, as before spares
        assert not os.path.exists(workdir)
        assert trace.last(workdir).state == sf.RUN_DONE


def test_a_spare_stays_one_when_the_next_subjob_cannot_take_it(tmp_path):
    first = str(tmp_path / "1" / "0")
    _run(first, _line(sf.RUN_DONE, "exit=0"))
    trace.tidy_soon(first)
    # A directory that already exists (a resubmitted subjob's, its input staged) is used
    # as it is; a new master's first subjob makes its master's directory.
    existing = tmp_path / "1" / "1"
    (existing / "input").mkdir(parents=True)
    outcome.prepare(str(existing), _line(sf.CREATED, "starting"))
    assert sorted(os.listdir(existing)) == ["input", "output", "status"]
    new_master = str(tmp_path / "2" / "0")
    outcome.prepare(new_master, _line(sf.CREATED, "starting"))
    assert len(os.listdir(_spare_dir(tmp_path))) == 1, "the spare was lost"
    assert [info.state for info in trace.history(new_master)] == [sf.CREATED]
    second = str(tmp_path / "2" / "1")
    outcome.prepare(second, _line(sf.CREATED, "starting"))
    assert os.listdir(_spare_dir(tmp_path)) == []
    assert [info.state for info in trace.history(second)] == [sf.CREATED]


def test_beyond_the_pool_silent_directories_are_queued_for_removal(tmp_path):
    workdirs = [str(tmp_path / "1" / str(sub)) for sub in range(spares.MAX_SPARES + 3)]
    for workdir in workdirs:
        _run(workdir, _line(sf.RUN_DONE, "exit=0"))
    for workdir in workdirs:
        trace.tidy_soon(workdir)
    assert len(os.listdir(_spare_dir(tmp_path))) == spares.MAX_SPARES
    journal = os.path.join(tmp_path, tidy_journal.DIRECTORY)
    queued = [line for name in os.listdir(journal)
              for line in open(os.path.join(journal, name)).read().split()]
    assert queued == workdirs[spares.MAX_SPARES:]
    # The tidier's quiet moment removes the queued directories and the spares alike.
    deadline = time.monotonic() + 30
    while os.path.exists(_spare_dir(tmp_path)) or any(os.path.exists(w) for w in workdirs):
        assert time.monotonic() < deadline, "not tidied at the quiet moment"
        time.sleep(0.1)
    assert all(trace.last(w).state == sf.RUN_DONE for w in workdirs)
    assert not os.path.exists(os.path.join(tmp_path, tidy_journal.DIRECTORY))  # drained: gone
    assert sorted(os.listdir(tmp_path / "1")) == [trace.COLLECTED]


def test_release_removes_the_spares_and_their_directory(tmp_path):
    pool = spares._Spares()
    workdir = str(tmp_path / "1" / "0")
    _run(workdir, _line(sf.RUN_DONE, "exit=0"))
    silent = trace._silent(workdir)
    assert silent is not None
    assert pool.keep(workdir, str(tmp_path), silent.outputs) and pool.count() == 1
    pool.release()
    assert pool.count() == 0 and not os.path.exists(_spare_dir(tmp_path))
    assert not pool.take(str(tmp_path / "1" / "1"), _line(sf.CREATED))


def test_the_spares_of_a_process_that_ended_are_removed_by_the_next_that_keeps_one(tmp_path):
    directory = _spare_dir(tmp_path)
    live, dead = subprocess.Popen(["sleep", "30"]), subprocess.Popen(["sleep", "30"])
    live_name, dead_name = f"{procs.process_tag(live.pid)}-1", f"{procs.process_tag(dead.pid)}-1"
    dead.kill()
    dead.wait()
    try:
        for name in (live_name, dead_name):
            os.makedirs(os.path.join(directory, name, "output"))
        pool = spares._Spares()
        workdir = str(tmp_path / "1" / "0")
        _run(workdir, _line(sf.RUN_DONE, "exit=0"))
        silent = trace._silent(workdir)
        assert silent is not None
        assert pool.keep(workdir, str(tmp_path), silent.outputs)
        left = sorted(os.listdir(directory))
        assert dead_name not in left and live_name in left and len(left) == 2, left
    finally:
        live.kill()
        live.wait()


_KINDS = st.sampled_from(["silent", "stdout", "file", "failed"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(_KINDS, min_size=1, max_size=30), at_once=st.integers(1, 4))
def test_every_subjob_reads_its_own_trace_and_output_whatever_came_before(tmp_path_factory, kinds, at_once):
    """Subjobs of every kind, ``at_once`` running together, started in whatever spares
    the earlier ones left: each one's trace and output are its own."""
    workspace = tmp_path_factory.mktemp("ws")
    workdirs = [str(workspace / "1" / str(sub)) for sub in range(len(kinds))]
    running: list[int] = []

    def end(sub: int) -> None:
        kind, workdir = kinds[sub], workdirs[sub]
        if kind == "silent":
            final, stdout, extra = _line(sf.RUN_DONE, "exit=0"), b"", None
        elif kind == "stdout":
            final, stdout, extra = _line(sf.RUN_DONE, "exit=0"), f"out {sub}\n".encode(), None
        elif kind == "file":
            final, stdout, extra = _line(sf.RUN_DONE, "exit=0"), b"", f"made-{sub}"
        else:
            final, stdout, extra = _line(sf.RUN_FAILED, "exit=1"), b"", None
        out = os.path.join(workdir, "output")
        assert sorted(os.listdir(out)) in ([], ["stderr", "stdout"]), "a spare held something"
        with open(os.path.join(out, "stdout"), "wb") as handle:
            handle.write(stdout)
        open(os.path.join(out, "stderr"), "wb").close()
        if extra:
            open(os.path.join(out, extra), "w").close()
        sf.append_line(os.path.join(workdir, "status"), final + b"\n")
        trace.tidy_soon(workdir)

    for sub in range(len(kinds)):
        if len(running) == at_once:
            end(running.pop(0))
        outcome.prepare(workdirs[sub], _line(sf.CREATED, f"sub={sub}"))
        running.append(sub)
    for sub in running:
        end(sub)

    for sub, (kind, workdir) in enumerate(zip(kinds, workdirs, strict=True)):
        lines = trace.history(workdir)
        final = sf.RUN_FAILED if kind == "failed" else sf.RUN_DONE
        assert [info.state for info in lines] == [sf.CREATED, final]
        assert lines[0].note == f"sub={sub}", (sub, lines)
        assert os.path.isdir(workdir) == (kind != "silent"), (sub, kind)
        if kind == "stdout":
            with open(os.path.join(workdir, "output", "stdout")) as handle:
                assert handle.read() == f"out {sub}\n"
        if kind == "file":
            assert sorted(os.listdir(os.path.join(workdir, "output"))) == [f"made-{sub}", "stderr", "stdout"]
