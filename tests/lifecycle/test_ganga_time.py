"""``j.time`` as Ganga's own tests read it (GangaCore/test/GPI/TestJobTime, issue 19):
'new' strictly ordered (a master first, then its subjobs in id order, a copy after its
original), 'resubmitted' after a resubmission, a master's stamps its subjobs' extremes."""

from __future__ import annotations

import datetime

from ganga_like.gpi import ArgSplitter, Executable, Job, Local


def _split_job(*args_per_subjob):
    return Job(application=Executable(exe="/bin/sh"), backend=Local(),
               splitter=ArgSplitter(args=[list(a) for a in args_per_subjob]))


def test_new_is_strictly_ordered_master_first_then_subjobs_then_a_copy(session):
    j1 = Job()
    j2 = j1.copy()
    assert j2.time.new() > j1.time.new()  # made in the same clock tick, still later
    j3 = _split_job(["-c", "true"], ["-c", "true"], ["-c", "true"])
    j3.submit()
    assert j3.wait(timeout=60) == "completed"
    news = [s.time.new() for s in j3.subjobs]
    assert all(isinstance(t, datetime.datetime) for t in news)
    assert j3.time.new() < news[0] < news[1] < news[2]  # master first, then in id order
    j4 = j3.copy()
    assert j4.time.new() > j3.time.new() and len(j4.subjobs) == 0
    j4.submit()
    assert j4.wait(timeout=60) == "completed"
    assert min(s.time.new() for s in j4.subjobs) > max(news)


def test_resubmitted_and_a_masters_stamps_are_its_subjobs_extremes(session):
    j = _split_job(["-c", "exit 0"], ["-c", "sleep 0.3"], ["-c", "exit 1"])
    j.submit()
    assert j.wait(timeout=60) == "failed"
    stamps = [s.time.timestamps for s in j.subjobs]
    master = j.time.timestamps
    assert master["submitted"] == min(s["submitted"] for s in stamps)
    assert master["backend_running"] == min(s["backend_running"] for s in stamps)
    assert master["backend_final"] == max(s["backend_final"] for s in stamps)
    assert master["final"] == max(s["final"] for s in stamps)
    assert "resubmitted" not in master
    j.resubmit()
    assert j.wait(timeout=60) == "failed"
    failed = j.subjobs[2].time.timestamps
    assert failed["resubmitted"] > failed["new"] and "resubmitted" in j.time.timestamps
    assert "resubmitted" not in j.subjobs[0].time.timestamps
