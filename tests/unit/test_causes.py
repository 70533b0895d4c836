"""Cause ids (issue 17, point 5): the write context carries the current cause, set_status
stamps it on each history entry and queue-log change; a derived master move names its
subjob's; old records (5-tuples, free-string sources) still read."""

from __future__ import annotations

import re
import threading

import pytest

from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.writes import Change, acting_as, current_cause, new_cause, writing
from ganga_like.queue_log import format_line
from ganga_like.status import Cause, HistoryEntry, Source, history_entries


def test_a_write_with_a_cause_stamps_each_entry_and_change(make_job_in):
    job = make_job_in("new")
    kill = Cause("kill", "x.41")
    with writing(cause=kill) as write:
        set_status(job, "submitting", "why", source=Source.USER, now=5.0)
    assert job.history[-1] == (5.0, "new", "submitting", "why", "user", ("kill", "x.41", None))
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
    verb = new_cause("submit")
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
    with acting_as(new_cause("kill")):
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
    assert str(master_entry.cause) == "derived from monitor batch #x.40"
    assert [c.cause for c in write.changes] == [batch, master_entry.cause]


def test_no_cause_outside_any(make_job_in):
    job = make_job_in("new")
    with writing() as write:
        set_status(job, "submitting")
    assert job.history[-1][5] is None and write.changes[0].cause is None


def test_new_causes_have_unique_ids_and_name_what_they_follow():
    ids = [new_cause("kill").id for _ in range(100)]
    assert len(set(ids)) == 100
    assert all(re.fullmatch(r"[0-9a-z]+\.\d+", i) for i in ids)
    assert len({i.split(".")[0] for i in ids}) == 1  # this process's stamp
    batch = new_cause("monitor batch")
    auto = new_cause("auto-resubmit", batch)
    assert auto.after == batch
    assert str(auto) == f"auto-resubmit #{auto.id} after monitor batch #{batch.id}"
    assert Cause.load(auto.stored()) == auto


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
