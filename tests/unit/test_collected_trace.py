"""A master's collected trace (``backends/runtime/trace.py``) is read on from where the
last read stopped; a trace deleted and written again under the same name is read
from its start, even where the filesystem gives the new file the old one's inode
number (ext4 does): the reader compares the trace's first bytes too."""

from __future__ import annotations

import os
import time

from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime import trace


def _write(path: str, lines: list[tuple[str, str, str]], mode: str = "ab") -> None:
    with open(path, mode) as out:
        for key, state, note in lines:
            out.write(key.encode() + b" " + sf.StatusInfo(state, note, time.time()).line() + b"\n")


def _states(workdir: str) -> list[tuple[str, str]]:
    return [(info.state, info.note) for info in trace.history(workdir)]


def test_a_trace_read_on_and_a_trace_written_again_under_its_name(tmp_path):
    master = tmp_path / "workspace" / "3"
    master.mkdir(parents=True)
    collected, key = trace.collected_path(str(master / "0"))
    _write(collected, [(key, sf.CREATED, "starting"), (key, sf.RUN_DONE, "exit=0")])
    assert _states(str(master / "0")) == [(sf.CREATED, "starting"), (sf.RUN_DONE, "exit=0")]
    _write(collected, [("1", sf.CREATED, "starting")])  # appended: read on
    assert _states(str(master / "1")) == [(sf.CREATED, "starting")]

    os.unlink(collected)  # the job removed, and a job of the same id run again
    _write(collected, [(key, sf.CREATED, "again"), (key, sf.RUN_FAILED, "exit=3"),
                       ("1", sf.CREATED, "again"), ("1", sf.RUN_DONE, "exit=0"),
                       ("2", sf.CREATED, "new")], mode="wb")
    assert _states(str(master / "0")) == [(sf.CREATED, "again"), (sf.RUN_FAILED, "exit=3")]
    assert _states(str(master / "1")) == [(sf.CREATED, "again"), (sf.RUN_DONE, "exit=0")]


def test_traces_beyond_those_kept_read_are_read_again_whole(tmp_path):
    workdirs = []
    for job in range(8):  # more masters than the reader keeps: each read again from its start
        master = tmp_path / str(job)
        master.mkdir()
        collected, key = trace.collected_path(str(master / "0"))
        _write(collected, [(key, sf.CREATED, f"job {job}")])
        workdirs.append(str(master / "0"))
    for _ in range(2):
        assert [_states(w) for w in workdirs] == [[(sf.CREATED, f"job {job}")] for job in range(8)]
    held = len(os.listdir("/proc/self/fd"))
    for w in workdirs:
        trace.history(w)
    assert len(os.listdir("/proc/self/fd")) == held  # no descriptor left behind by the reads
