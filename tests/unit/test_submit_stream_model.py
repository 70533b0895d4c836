"""A master's submission that streams (model/stream.py): its derived status, its stop,
what why() says, and the master's history while it sends. Pure: no database, no Ray."""

from __future__ import annotations

from ganga_like.engine.core import _split
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import master_moved, set_status
from ganga_like.model.splitters import ArgSplitter
from ganga_like.model.stream import SubmitStream, derived_status, stream_of
from ganga_like.status import Status


def master_of(n: int) -> Job:
    master = Job(application=Executable(exe="/bin/true"),
                 splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
    master.id = 7
    _split(master)
    return master


def test_a_master_reads_submitting_while_its_subjobs_are_sent_and_its_counts_after():
    master = master_of(5)
    for sub in list(master.subjobs)[:2]:
        set_status(sub, Status.SUBMITTING)
        set_status(sub, Status.SUBMITTED)
    assert master.status is Status.SUBMITTED  # no stream: the master rule over its counts
    master._stream = SubmitStream(next_id=2, left=3, total=5)
    assert master.status is Status.SUBMITTING and derived_status(master) is Status.SUBMITTING
    before = master.history
    set_status(list(master.subjobs)[0], Status.RUNNING)  # a derived move hidden by the stream
    assert master.history == before
    master._stream.left = 0  # all sent
    assert stream_of(master) is None and master.status is Status.RUNNING


def test_a_stopped_stream_leaves_its_subjobs_new_and_says_why():
    master = master_of(4)
    set_status(list(master.subjobs)[0], Status.SUBMITTING)
    stream = master._stream = SubmitStream(next_id=1, left=3, total=4)
    stream.stop("kill 7")
    assert stream.stopped == "kill 7" and not stream.sending
    assert master.status is Status.SUBMITTING  # from its counts now: one still submitting
    why = str(master.why())
    assert "its submission stopped (kill 7) after 1 of 4 subjobs were sent; 3 stay new" in why
    assert "waits to be sent" not in str(list(master.subjobs)[3].why())


def test_why_says_how_much_is_left_to_send():
    master = master_of(3)
    master._stream = SubmitStream(next_id=1, left=2, total=3)
    assert "sending its subjobs to the backend: 1 of 3 sent, 2 to send" in str(master.why())
    assert str(list(master.subjobs)[2].why()).startswith("7.2 waits to be sent: its master is sending")


def test_a_finished_stream_is_not_stopped_again():
    stream = SubmitStream(next_id=3, left=0, total=3)
    stream.stop("kill 1")
    assert stream.stopped == ""


def test_jobs_stored_before_streams_load_without_one():
    assert Job._stream is None and SubmitStream.stopped == "" and SubmitStream.cause is None


def test_a_stop_is_a_derived_move_of_the_master():
    master = master_of(3)
    first = list(master.subjobs)[0]
    set_status(first, Status.SUBMITTING)
    master._stream = SubmitStream(next_id=1, left=2, total=3)
    set_status(first, Status.SUBMITTED)
    set_status(first, Status.RUNNING)  # hidden by the stream: still submitting
    before = master.status
    master._stream.stop("kill 7")
    master_moved(master, before, "its submission stopped (kill 7)")
    assert master.status is Status.RUNNING
    assert master.history[-1][1:5] == ("submitting", "running", "its submission stopped (kill 7)",
                                       "derived")
    master_moved(master, Status.RUNNING, "nothing moved")  # no move: nothing recorded
    assert master.history[-1][3] == "its submission stopped (kill 7)"
