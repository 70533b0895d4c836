"""The contract's plain data and the shared long poll, without Ray or processes."""

from __future__ import annotations

import dataclasses
import threading
import time

from ganga_like.backends.base import Handle
from ganga_like.backends.runtime.events import EventStream

LINGER = 0.3


def test_handle_tuple_round_trips_every_field_in_order():
    handle = Handle("Local", "3.14", "host", 4242, 1.5, "task", "/w", "boom", 2)
    assert handle.to_tuple() == dataclasses.astuple(handle)
    assert Handle.from_tuple(handle.to_tuple()) == handle


class _Stream(EventStream):
    def __init__(self) -> None:
        super().__init__(start=0)

    def emit(self, fqid: str) -> None:  # type: ignore[override]
        with self.cond:
            super().emit(fqid, "started")
            self.cond.notify_all()

    def events(self, since: int, timeout: float = 30.0, linger: float = 0.0):
        return self.poll(since, timeout, linger)


def test_an_event_the_poll_waited_for_goes_out_at_once():
    # A linger far longer than any scheduling delay of a loaded machine: answering
    # after it would mean it was added on top of the wait; at once is 0.05 s.
    long_linger = 20.0
    stream = _Stream()
    threading.Timer(0.05, stream.emit, args=("1.0",)).start()
    started = time.monotonic()
    seq, events = stream.events(0, timeout=60.0, linger=long_linger)
    waited = time.monotonic() - started
    assert [e.fqid for e in events] == ["1.0"] and seq == 1
    assert waited < long_linger / 2  # idle: no linger on top of the wait


def test_a_busy_stream_is_answered_in_batches():
    stream = _Stream()
    stream.emit("1.0")  # already waiting when the poll comes in: the stream is busy
    threading.Timer(0.05, stream.emit, args=("1.1",)).start()
    started = time.monotonic()
    seq, events = stream.events(0, timeout=5.0, linger=LINGER)
    assert time.monotonic() - started >= LINGER * 0.9
    assert [e.fqid for e in events] == ["1.0", "1.1"] and seq == 2


def test_acknowledged_events_are_forgotten_and_an_empty_poll_times_out():
    stream = _Stream()
    stream.emit("1.0")
    seq, _ = stream.events(0, timeout=1.0)
    started = time.monotonic()
    assert stream.events(seq, timeout=0.1) == (seq, [])
    assert time.monotonic() - started >= 0.09
    assert not stream.pending()


def test_a_lingering_poll_answers_once_an_event_leaves_the_actor_quiet():
    # The linger waits on a condition of its own: the changes that leave runs behind do
    # not wake it (each wake-up was a switch of threads per subjob); the event after which
    # nothing runs ends it at once (20 s linger: at once is well under half of it).
    running = {f"1.{index}" for index in range(20)}
    poller_looks = []

    def quiet() -> bool:
        if threading.current_thread().name == "poller":
            poller_looks.append(len(running))
        return not running

    stream = EventStream(quiet=quiet, start=0)

    def finish_all() -> None:
        for fqid in sorted(running):
            with stream.cond:
                running.discard(fqid)
                stream.emit(fqid, "finished")
                stream.cond.notify_all()  # as the actors do after every change
            time.sleep(0.01)

    with stream.cond:
        stream.emit("1.x", "started")  # one event waiting: the poll lingers
    answer: list[tuple[int, list]] = []
    poller = threading.Thread(target=lambda: answer.append(stream.poll(0, timeout=60.0, linger=20.0)),
                              name="poller")
    started = time.monotonic()
    poller.start()
    time.sleep(0.05)
    finish_all()
    poller.join(30)
    seq, events = answer[0]
    assert len(events) == 21 and seq == 21
    assert time.monotonic() - started < 10.0
    assert len(poller_looks) <= 3, poller_looks  # on entry and at the end, not per event
