"""Unit tests of the Pavilion-style status file (ganga_like.backends.runtime.status_file)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganga_like.backends.runtime import status_file as sf
from ganga_like.errors import InvalidValue

WRAPPER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "ganga_like", "backends", "runtime", "wrapper.sh")


def test_set_current_history_round_trip(tmp_path):
    status = sf.StatusFile(tmp_path / "status")
    assert status.current() is None and status.history() == []
    before = time.time()
    status.set(sf.CREATED, "made")
    status.set(sf.RUNNING, "pid=12 wrapper=11 marker=abc:1.2")
    written = status.set(sf.RUN_FAILED, "exit=3")
    after = time.time()
    history = status.history()
    assert [i.state for i in history] == [sf.CREATED, sf.RUNNING, sf.RUN_FAILED]
    assert history[-1] == written
    assert status.current() == written
    assert before - 1e-6 <= history[0].when <= history[-1].when <= after + 1e-6
    assert written.exit_code == 3 and written.terminal
    assert status.has_state(sf.RUNNING) and not status.has_state(sf.RUN_DONE)


def test_line_format(tmp_path):
    path = tmp_path / "status"
    sf.StatusFile(path).set(sf.QUEUED, "waiting for a slot")
    line = path.read_text()
    stamp, state, note = line.rstrip("\n").split(" ", 2)
    assert state == "QUEUED" and note == "waiting for a slot" and line.endswith("\n")
    assert len(stamp) == len("2025-01-31T14:02:07.123456+0100")
    assert stamp[10] == "T" and stamp[19] == "."


@pytest.mark.parametrize(
    "bad", ["running", "Running", "1ABC", "_ABC", "A" * 16, "RUN-DONE", "RUN DONE", "", "ÄRGER", None]
)
def test_state_names_are_validated(tmp_path, bad):
    with pytest.raises(InvalidValue):
        sf.StatusFile(tmp_path / "status").set(bad, "x")
    assert not (tmp_path / "status").exists()


def test_known_states_follow_the_rules():
    for state in sf.STATES:
        assert sf.validate_state(state) == state
    for state in sf.STATES:
        if state.endswith("_ERROR") or state.endswith("_FAILED"):
            assert state in sf.TERMINAL_STATES


def test_long_note_is_truncated_to_one_atomic_line(tmp_path):
    status = sf.StatusFile(tmp_path / "status")
    status.set(sf.RUN_FAILED, "exit=1 " + "é" * 5000)  # multi-byte: cut on a character boundary
    raw = (tmp_path / "status").read_bytes()
    assert len(raw) <= sf.LINE_MAX and raw.endswith(b"\n") and raw.count(b"\n") == 1
    raw.decode("utf-8")
    assert status.current().exit_code == 1


def test_newlines_in_notes_stay_on_one_line(tmp_path):
    status = sf.StatusFile(tmp_path / "status")
    status.set(sf.RUN_DONE, "exit=0\nFAKE_STATE injected\r\n")
    assert [i.state for i in status.history()] == [sf.RUN_DONE]


def test_garbled_and_partial_lines_are_skipped(tmp_path):
    path = tmp_path / "status"
    status = sf.StatusFile(path)
    status.set(sf.CREATED, "ok")
    with open(path, "ab") as handle:
        handle.write(b"garbage without structure\n")
        handle.write(b"2025-01-31T14:02:07.123456+0000 lowercase bad state\n")
        handle.write(b"not-a-time RUNNING x\n")
        handle.write(b"\xff\xfe\x00 binary\n")
        handle.write(b"\n")
    status.set(sf.RUNNING, "pid=1")
    with open(path, "ab") as handle:
        handle.write(b"2025-01-31T14:02:07.12")  # a write cut short: no newline
    assert [i.state for i in status.history()] == [sf.CREATED, sf.RUNNING]
    assert status.current().state == sf.RUNNING


def test_current_reads_only_the_tail_and_survives_a_huge_file(tmp_path):
    path = tmp_path / "status"
    status = sf.StatusFile(path)
    for index in range(2000):
        status.set(sf.RUNNING, f"n={index} " + "x" * 100)
    status.set(sf.RUN_DONE, "exit=0")
    assert status.current().state == sf.RUN_DONE
    assert len(status.history()) == 2001


def test_exit_code_of():
    assert sf.exit_code_of("exit=0") == 0
    assert sf.exit_code_of("exit=137 signal=KILL") == 137
    assert sf.exit_code_of("note exit=-1") == -1
    assert sf.exit_code_of("no exit here") is None
    assert sf.exit_code_of("preexit=3") is None


def test_lines_written_by_the_bash_wrapper_parse(tmp_path):
    workdir = tmp_path / "job"
    (workdir / "output").mkdir(parents=True)
    done = subprocess.run(["bash", WRAPPER, str(workdir), "/bin/sh", "-c", "exit 4"], timeout=10)
    assert done.returncode == 4
    history = sf.StatusFile(workdir / "status").history()
    assert [i.state for i in history] == [sf.RUNNING, sf.RUN_FAILED]
    assert history[-1].exit_code == 4
    assert abs(history[-1].when - time.time()) < 10


def test_concurrent_appends_do_not_interleave(tmp_path):
    path = tmp_path / "status"
    code = (
        "import sys; from ganga_like.backends.runtime import status_file as sf\n"
        "s = sf.StatusFile(sys.argv[1])\n"
        "for i in range(300): s.set('RUNNING', sys.argv[2] * 3000)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(path), letter], env=env) for letter in "abcd"
    ]
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    history = sf.StatusFile(path).history()
    assert len(history) == 1200
    assert all(len(set(info.note)) == 1 and len(info.note) == 3000 for info in history)


@settings(max_examples=200, deadline=None)
@given(note=st.text(max_size=5000), state=st.sampled_from(sorted(sf.STATES)))
def test_any_note_round_trips_as_one_line(tmp_path_factory, note, state):
    path = tmp_path_factory.mktemp("prop") / "status"
    written = sf.StatusFile(path).set(state, note)
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1 and len(raw) <= sf.LINE_MAX
    (read,) = sf.StatusFile(path).history()
    assert read.state == state
    cleaned = note.replace("\r", " ").replace("\n", " ")
    assert (cleaned.startswith(read.note)
            or cleaned.encode("utf-8", "replace").decode("utf-8", "replace").startswith(read.note))
    assert abs(read.when - written.when) < 1e-5


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_current_reads_a_file_at_the_edge_of_one_read(tmp_path, extra):
    # One read of 2 * LINE_MAX bytes takes a short file whole; a file of exactly that
    # size or more is read again from its tail: the last line is found either way.
    path = tmp_path / "status"
    status = sf.StatusFile(path)
    status.set(sf.CREATED, "x" * 3000)
    status.set(sf.RUNNING, "y" * 3000)
    last = sf.StatusInfo(sf.RUN_DONE, "exit=0 ", time.time()).line()
    room = 2 * sf.LINE_MAX + extra - path.stat().st_size - len(last)
    with open(path, "ab") as handle:
        handle.write(last[:-1] + b"z" * room + b"\n")
    assert path.stat().st_size == 2 * sf.LINE_MAX + extra
    assert status.current().state == sf.RUN_DONE and status.current().note.endswith("z")


@pytest.mark.parametrize("zone", ["UTC", "Europe/Zurich", "America/New_York", "Australia/Lord_Howe"])
def test_format_time_matches_datetime_in_every_second_and_offset(monkeypatch, zone):
    # The date, time and offset of a second are worked out once and reused: across
    # daylight-saving changes (both passes of a repeated hour) and rounding to the next
    # second, the stamp is what datetime writes.
    import datetime as dt
    import random

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        changes = [1711846800.0, 1729990800.0, 1711846799.9999996, 1729987200.5, 1743903000.0]
        stamps = [base + step for base in changes for step in (-3600.25, -0.5, 0.0, 0.25, 1800.75, 3600.0)]
        generator = random.Random(7)
        stamps += [generator.uniform(0, 2e9) for _ in range(2000)]
        for when in stamps:
            expected = dt.datetime.fromtimestamp(when).astimezone().strftime("%Y-%m-%dT%H:%M:%S.%f%z")
            assert sf.format_time(when) == expected, when
    finally:
        monkeypatch.undo()
        time.tzset()
