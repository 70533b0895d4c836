"""The backends' run-state core without processes or Ray, in the style of dask's
worker state machine tests: feed the table stimuli (a submit, a start, an end, a
kill), then assert the events it emits and the instructions it returns (the runs
to start now). A Hypothesis state machine drives random sequences of stimuli and
checks the invariants after each one.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ganga_like.backends import base
from ganga_like.backends.base import Handle, KillResult
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime.actor import RuntimeActor
from ganga_like.backends.runtime.events import EventStream
from ganga_like.backends.runtime.runs import Run, RunStateError
from ganga_like.backends.runtime.table import DROPPED_NOTE, RunTable


def make(cap: int | None = 2) -> tuple[RunTable, EventStream]:
    stream = EventStream(start=0)
    return RunTable(stream, cap), stream


def new_run(fqid: str) -> Run:
    return Run(fqid, f"/w/{fqid}", f"repo:{fqid}", Handle("Test", fqid))


def submit(table: RunTable, fqid: str) -> tuple[Run, bool]:
    run = new_run(fqid)
    assert table.add(run) == ""
    return run, table.admit(run, "waiting for a free slot")


_read_up_to: dict[int, int] = {}


def drain(stream: EventStream) -> list[tuple[str, str, str]]:
    """The events emitted since the last drain, as a poller acknowledging them sees them."""
    seq, events = stream.poll(_read_up_to.get(id(stream), 0), timeout=0)
    _read_up_to[id(stream)] = seq
    return [(e.fqid, e.kind, e.detail or e.note) for e in events]


# ---------------------------------------------------------------------- stimuli -> events, instructions


def test_runs_under_the_cap_start_and_the_rest_queue_in_order():
    table, stream = make(cap=2)
    started = [submit(table, f)[1] for f in "abcd"]
    assert started == [True, True, False, False]
    assert [r.fqid for r in table.queued()] == ["c", "d"]
    assert drain(stream) == [("c", base.QUEUED, "Queued"), ("d", base.QUEUED, "Queued")]
    assert table.in_slots() == 2 and table.free_slots() == 0


def test_a_final_event_frees_the_slot_for_the_oldest_queued_run():
    table, stream = make(cap=1)
    a, _ = submit(table, "a")
    submit(table, "b")
    submit(table, "c")
    table.move(a, rs.RUNNING, "its wrapper started")
    table.finish(a, base.FINISHED, 0, "RUN_DONE exit=0")
    assert table.get("a") is None
    assert [r.fqid for r in table.take_queued()] == ["b"]  # the instruction: start b
    assert table.take_queued() == []  # c waits: b holds the only slot
    finals = [e for e in drain(stream) if e[1] == base.FINISHED]
    assert finals == [("a", base.FINISHED, "RUN_DONE exit=0")]


def test_a_lingering_run_frees_its_slot_but_is_still_held():
    table, _ = make(cap=1)
    a, _ = submit(table, "a")
    submit(table, "b")
    table.move(a, rs.RUNNING, "its wrapper started")
    table.move(a, rs.LINGERING, "its wrapper ended")
    assert [r.fqid for r in table.take_queued()] == ["b"]
    assert table.get("a") is a and a.state in rs.HELD_STATES


def test_a_queued_run_killed_is_dropped_once_and_skipped_by_the_queue():
    table, stream = make(cap=1)
    a, _ = submit(table, "a")
    b, _ = submit(table, "b")
    submit(table, "c")
    drain(stream)
    table.drop(b)
    table.drop(b)  # a second kill of a done run emits nothing more
    assert drain(stream) == [("b", base.KILLED, DROPPED_NOTE)]
    table.finish(a, base.KILLED, note="killed")
    assert [r.fqid for r in table.take_queued()] == ["c"]


def test_a_host_that_fails_verify_sends_its_run_back_to_the_head_of_the_queue():
    table, _ = make(cap=None)
    runs = {f: new_run(f) for f in "abc"}
    for run in runs.values():
        table.add(run)
        table.move(run, rs.QUEUED, "waiting for the scheduler")
    table.move(runs["b"], rs.STARTING, "the scheduler assigned its hosts")  # picked out of order
    assert [r.fqid for r in table.queued()] == ["a", "c"]
    table.move(runs["b"], rs.QUEUED, "verify failed", first=True)
    assert [r.fqid for r in table.queued()] == ["b", "a", "c"]


def test_one_run_per_subjob():
    table, _ = make()
    submit(table, "a")
    assert table.add(new_run("a")) == "subjob a is still starting in this actor"


def test_a_detail_is_told_only_when_it_changes():
    table, stream = make()
    run, _ = submit(table, "a")
    for _ in range(3):
        table.tell(run, base.DETAIL, "Pending", "waiting in Ray")
    table.tell(run, base.DETAIL, "Pending", "another reason")
    assert [e[2] for e in drain(stream)] == ["Pending", "Pending"]


def test_settling_runs_hold_a_kill_back_until_they_settle():
    table, stream = make()
    run, _ = submit(table, "a")  # starting: being handed over
    assert not table.settled(["a"]) and table.settled(["unknown"])
    with stream.cond:
        assert table.wait_settled(["a"], timeout=0.01) is False
    table.move(run, rs.PENDING, "handed over")
    assert table.settled(["a"])


# ---------------------------------------------------------------------- the table refuses


@pytest.mark.parametrize("src,dst", [(rs.QUEUED, rs.RUNNING), (rs.RUNNING, rs.QUEUED), (rs.DONE, rs.RUNNING),
                                     (rs.LINGERING, rs.RUNNING), (rs.PENDING, rs.LINGERING)])
def test_an_illegal_move_is_refused_with_the_allowed_ones(src, dst):
    run = new_run("a")
    run.state = src
    with pytest.raises(RunStateError) as error:
        rs.check_move(run, dst, "a test")
    message = str(error.value)
    assert f"{src} -> {dst}" in message and "\n" not in message
    allowed = sorted(to for (frm, to) in rs.RUN_MOVES if frm == src)
    assert message.endswith(", ".join(allowed) or "nowhere (final)")


def test_every_state_is_reachable_and_done_is_final():
    reached = {rs.NEW}
    for _ in rs.RUN_STATES:
        reached |= {dst for (src, dst) in rs.RUN_MOVES if src in reached}
    assert reached == set(rs.RUN_STATES)
    assert not [edge for edge in rs.RUN_MOVES if edge[0] == rs.DONE]
    assert rs.table_markdown().count("\n") == len(rs.RUN_MOVES) + 1


# ---------------------------------------------------------------------- the shared kill protocol


class _Driver(RuntimeActor):
    """The runtime with a driver that owns nothing: what kill() does before any process."""

    BACKEND = "Test"

    def __init__(self) -> None:
        super().__init__(cap=1)
        self.asked: list[str] = []

    def _kill_work(self, work, grace):
        self.asked += [h.fqid for h, _ in work]
        for handle, run in work:
            self._killed(run, handle, "ended")
        return [KillResult(h.fqid, True, "ended") for h, _ in work]


def test_kill_drops_queued_runs_and_asks_the_driver_for_the_others():
    actor = _Driver()
    with actor._cond:
        a, _ = submit(actor._runs, "a")
        actor._runs.move(a, rs.RUNNING, "its wrapper started")
        submit(actor._runs, "b")
    results = actor.kill([a.handle, Handle("Test", "b"), Handle("Test", "z")])
    assert [r.note for r in results] == ["ended", DROPPED_NOTE, "ended"]
    assert actor.asked == ["a", "z"]  # b never reached the driver: it was only queued
    finals = [(e.fqid, e.kind) for e in actor.events(0, 0)[1] if e.kind != base.QUEUED]
    assert finals == [("b", base.KILLED), ("a", base.KILLED), ("z", base.KILLED)]
    assert actor.held([a.handle]) == [False]  # forgotten: the driver looks (no process here)


def test_kill_waits_for_a_run_being_handed_over():
    actor = _Driver()
    with actor._cond:
        a, _ = submit(actor._runs, "a")  # starting

    def settle() -> None:
        with actor._cond:
            actor._runs.move(a, rs.RUNNING, "its wrapper started")
            actor._cond.notify_all()

    threading.Timer(0.1, settle).start()
    (result,) = actor.kill([a.handle])
    assert result.confirmed and a.history[-2][1] == rs.RUNNING  # killed after it settled


# ---------------------------------------------------------------------- random stimuli


class RunTableMachine(RuleBasedStateMachine):
    """Random submits, starts, ends, lingers and kills; the invariants after each."""

    def __init__(self) -> None:
        super().__init__()
        self.table, self.stream = make(cap=3)
        self.names = iter(range(10**6))
        self.submitted: list[str] = []
        self.finals: dict[str, int] = {}
        self.order: list[str] = []  # queued fqids in the order they were queued
        self.since = 0

    def _runs(self, *states: str) -> list[Run]:
        return [r for r in self.table if r.state in states]

    def _collect(self) -> None:
        self.since, events = self.stream.poll(self.since, timeout=0)
        for event in events:
            if event.kind in (base.FINISHED, base.KILLED, base.LOST):
                self.finals[event.fqid] = self.finals.get(event.fqid, 0) + 1

    @rule()
    def submit(self) -> None:
        fqid = str(next(self.names))
        self.submitted.append(fqid)
        if not submit(self.table, fqid)[1]:
            self.order.append(fqid)

    @precondition(lambda self: self._runs(rs.STARTING))
    @rule(data=st.data(), pend=st.booleans())
    def start(self, data, pend) -> None:
        run = data.draw(st.sampled_from(self._runs(rs.STARTING)))
        if pend:
            self.table.move(run, rs.PENDING, "handed over")
        self.table.move(run, rs.RUNNING, "its wrapper started")

    @precondition(lambda self: self._runs(rs.RUNNING))
    @rule(data=st.data(), linger=st.booleans())
    def end(self, data, linger) -> None:
        run = data.draw(st.sampled_from(self._runs(rs.RUNNING)))
        if linger:
            self.table.move(run, rs.LINGERING, "its wrapper ended")
        else:
            self.table.finish(run, base.FINISHED, 0, "exit=0")

    @precondition(lambda self: self._runs(rs.LINGERING))
    @rule(data=st.data())
    def leftovers_gone(self, data) -> None:
        self.table.finish(data.draw(st.sampled_from(self._runs(rs.LINGERING))), base.FINISHED, 0, "exit=0")

    @precondition(lambda self: len(self.table))
    @rule(data=st.data())
    def kill(self, data) -> None:
        run = data.draw(st.sampled_from(list(self.table)))
        if run.state == rs.QUEUED:
            self.table.drop(run)
        elif run.state not in rs.SETTLING_STATES:
            self.table.finish(run, base.KILLED, note="killed")

    @rule()
    def fill(self) -> None:
        for run in self.table.take_queued():
            assert run.fqid == self.order[0]  # oldest first
            self.order.remove(run.fqid)

    @invariant()
    def the_cap_holds_and_the_queue_is_fifo(self) -> None:
        self._collect()
        assert self.table.in_slots() <= 3
        self.order = [f for f in self.order if (r := self.table.get(f)) is not None and r.state == rs.QUEUED]
        assert [r.fqid for r in self.table.queued()] == self.order
        assert self.table.count(rs.QUEUED) == len(self.order)

    @invariant()
    def each_subjob_ends_once_and_only_ended_ones_are_forgotten(self) -> None:
        self._collect()
        assert all(count == 1 for count in self.finals.values())
        for fqid in self.submitted:
            assert (self.table.get(fqid) is None) == (fqid in self.finals)


TestRunTableMachine = RunTableMachine.TestCase
TestRunTableMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_the_architecture_page_shows_the_run_state_table_from_the_code():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    begin, end = "<!-- run-table:begin -->", "<!-- run-table:end -->"
    shown = text[text.index(begin) + len(begin):text.index(end)].strip()
    assert shown == rs.table_markdown(), "docs/architecture.md's run-state table is out of date"
