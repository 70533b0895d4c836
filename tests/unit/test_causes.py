"""Cause ids (issue 17, point 5): the write context carries the current cause, set_status
stamps it on each history entry and queue-log change; a derived master move names its
subjob's; old records (5-tuples, free-string sources) still read."""

from __future__ import annotations

import re
import socket
import threading

import pytest

from ganga_like.channel import origin
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.writes import Change, acting_as, current_cause, writing
from ganga_like.queue_log import format_line
from ganga_like.status import Cause, HistoryEntry, Source, history_entries


def test_a_write_with_a_cause_stamps_each_entry_and_change(make_job_in):
    job = make_job_in("new")
    kill = Cause("kill", "x.41")
    with writing(cause=kill) as write:
        set_status(job, "submitting", "why", source=Source.USER, now=5.0)
    assert job.history[-1] == (5.0, "new", "submitting", "why", "user", ("kill", "x.41", None, ""))
    assert history_entries(job.history)[-1] == HistoryEntry(5.0, "new", "submitting", "why",
                                                            Source.USER, kill)
    assert [c.cause for c in write.changes] == [kill]
    assert current_cause() is None  # gone with the write


def test_nested_writes_take_the_outer_cause_unless_named_their_own(make_job_in):
    a, b, c = (make_job_in("new", job_id=i) for i in (1, 2, 3))
    outer, inner = Cause("resubmit", "x.1"), Cause("recovery", "x.2")
    with writing(cause=outer):
        with writing():  # a write inside a write joins it: same cause
            set_status(a, "submitting")
        with writing(cause=inner):
            set_status(b, "submitting")
        set_status(c, "submitting")
    assert [history_entries(j.history)[-1].cause for j in (a, b, c)] == [outer, inner, outer]


def test_acting_as_names_the_cause_of_the_writes_opened_meanwhile(make_job_in):
    job = make_job_in("new")
    verb = Cause("submit", "7")
    with acting_as(verb):
        assert current_cause() == verb
        with acting_as(None):  # None keeps the current one
            assert current_cause() == verb
        with writing() as write:
            set_status(job, "submitting")
    assert current_cause() is None
    assert write.cause == verb and history_entries(job.history)[-1].cause == verb


def test_the_cause_is_the_threads_own(make_job_in):
    seen: list[object] = []
    with acting_as(Cause("kill", "8")):
        other = threading.Thread(target=lambda: seen.append(current_cause()))
        other.start()
        other.join()
    assert seen == [None]


def test_a_derived_master_move_names_the_subjob_changes_cause(make_master):
    master = make_master(2)
    batch = Cause("monitor batch", "x.40")
    with writing(cause=batch) as write:
        set_status(master.subjobs[0], "submitting", source=Source.BACKEND)
    sub_entry = history_entries(master.subjobs[0].history)[-1]
    master_entry = history_entries(master.history)[-1]
    assert sub_entry.cause == batch
    assert master_entry.source is Source.DERIVED
    assert master_entry.cause == Cause("derived", "x.40", batch)
    # The note says why, as a user reads it: which subjob, and what it became.
    assert master_entry.note == f"since subjob {master.subjobs[0].fqid} became submitting (was new)"
    assert str(master_entry.cause) == "derived from monitor batch #x.40"
    assert [c.cause for c in write.changes] == [batch, master_entry.cause]


def test_no_cause_outside_any(make_job_in):
    job = make_job_in("new")
    with writing() as write:
        set_status(job, "submitting")
    assert job.history[-1][5] is None and write.changes[0].cause is None


def test_a_cause_says_its_number_origin_and_what_it_follows():
    batch = Cause("monitor batch", "40")
    auto = Cause("auto-resubmit", "43", batch)
    kill = Cause("kill", "41", origin="ganga-like kill, pid 4242")
    assert str(kill) == "kill #41 from ganga-like kill, pid 4242"
    assert str(auto) == "auto-resubmit #43 after monitor batch #40"
    assert str(Cause("derived", "41", kill)) == f"derived from {kill}"
    assert str(Cause("kill", "")) == "kill"  # a read-only repository numbers nothing
    for cause in (batch, auto, kill, Cause("derived", "41", kill)):
        assert Cause.load(cause.stored()) == cause
    # Stored before origins (three-tuples) and before numbers (a longer id): read the same.
    assert Cause.load(("kill", "lz3k9q1a.41", None)) == Cause("kill", "lz3k9q1a.41")


def test_the_source_is_an_enumeration_of_todays_values():
    assert {s.value for s in Source} == {"user", "backend", "monitor", "recovery", "derived", "system"}
    for source in Source:
        assert Source.parse(source.value) is source and Source.parse(source) is source
    assert Source.parse("crash-test") is Source.SYSTEM  # a free string of an old record
    with pytest.raises(ValueError):
        set_status(Job(), "submitting", source="someone")  # a new one is an error


def test_old_records_read_with_no_cause_and_their_source_mapped():
    old = ((1.0, "new", "submitting", "", "user"),
           (2.0, "submitting", "submitted", "", "backend"),
           (3.0, "submitted", "failed", "x", "bench"))
    entries = history_entries(old)
    assert [e.cause for e in entries] == [None] * 3
    assert [e.source for e in entries] == [Source.USER, Source.BACKEND, Source.SYSTEM]
    assert entries[2].note == "x" and entries[2].dst == "failed"
    # An unreadable stored cause reads as none rather than failing the whole history.
    assert history_entries([(4.0, "a", "b", "", "user", "garbage")])[0].cause is None


def test_the_queue_log_line_ends_with_the_cause_and_stays_parseable():
    kill = Cause("kill", "x.41")
    line = format_line(Change(0.0, "3.1", "running", "killed", "killed, confirmed", "h", kill))
    parts = line.split(" ", 5)
    assert parts[2:5] == ["h", "3.1", "killed"]
    assert parts[5] == "killed, confirmed (kill #x.41)\n"
    bare = format_line(Change(0.0, "3", "running", "killed", "", "h", kill))
    assert bare.split(" ", 5)[4:] == ["killed", "(kill #x.41)\n"]
    assert format_line(Change(0.0, "3", "running", "killed", "", "h")).split(" ")[4] == "killed\n"


def test_a_client_names_itself_and_the_service_keeps_one_short_line(monkeypatch):
    monkeypatch.setattr(origin, "_face", [])
    monkeypatch.setattr("sys.argv", ["/home/u/analysis.py", "--x"])
    assert re.fullmatch(r"the Python script analysis\.py, pid \d+", origin.this_process())
    monkeypatch.setattr("sys.argv", ["/venv/lib/python3.11/site-packages/pytest/__main__.py"])
    assert origin.this_process().startswith("the Python script pytest, pid ")  # python -m pytest
    monkeypatch.setattr("sys.argv", ["-c"])
    assert origin.this_process().startswith("a Python process, pid ")
    origin.name_this_process("ganga-like kill")
    assert origin.this_process().startswith("ganga-like kill, pid ")
    assert origin.this_process(remote=True).endswith(f" on {socket.gethostname()}")
    assert origin.cleaned("x\n1.0 3 killed\x1b[2J") == "x?1.0 3 killed?[2J"  # one line
    assert len(origin.cleaned("y" * 500)) == origin.MAX_LENGTH
    assert origin.cleaned(None) == origin.cleaned({"a": 1}) == origin.cleaned("  ") == "a client"
