"""The backends' run-state core without processes or Ray, in the style of dask's
worker state machine tests: feed the table stimuli (a submit, a start, an end, a
kill), then assert the events it emits and the instructions it returns (the runs
to start now). A Hypothesis state machine drives random sequences of stimuli and
checks the invariants after each one.
"""

from __future__ import annotations

import collections
import threading
import weakref

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ganga_like.backends import base
from ganga_like.backends.base import Handle, KillResult, SubjobSpec
from ganga_like.backends.resources import Grant, Pool, Request
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime.actor import RuntimeActor
from ganga_like.backends.runtime.events import EventStream
from ganga_like.backends.runtime.runs import Run, RunStateError
from ganga_like.backends.runtime.table import DROPPED_NOTE, RunTable


def make(cap: int | None = 2, pool: Pool | None = None) -> tuple[RunTable, EventStream]:
    stream = EventStream(start=0)
    return RunTable(stream, cap, pool=pool, cpu_slots=True, limit="Local's concurrency limit"), stream


ANY = Request()


def new_run(fqid: str, request: Request = ANY, priority: int = 0) -> Run:
    spec = SubjobSpec(int(fqid.partition(".")[0]) if fqid[0].isdigit() else 0, None, fqid, "/bin/true",
                      (), {}, f"/w/{fqid}", f"repo:{fqid}", request=request, priority=priority)
    return Run(fqid, f"/w/{fqid}", f"repo:{fqid}", Handle("Test", fqid), spec=spec)


def submit(table: RunTable, fqid: str, request: Request = ANY, priority: int = 0) -> tuple[Run, bool]:
    run = new_run(fqid, request, priority)
    assert table.add(run) == ""
    return run, table.admit(run, "waiting for a free slot")


# Keyed by the stream itself: an id() is reused once a test's stream is collected, and a
# new stream read from an old one's position missed its first events.
_read_up_to: weakref.WeakKeyDictionary[EventStream, int] = weakref.WeakKeyDictionary()


def drain(stream: EventStream) -> list[tuple[str, str, str]]:
    """The events emitted since the last drain, as a poller acknowledging them sees them."""
    seq, events = stream.poll(_read_up_to.get(stream, 0), timeout=0)
    _read_up_to[stream] = seq
    return [(e.fqid, e.kind, e.detail or e.note) for e in events]


# ---------------------------------------------------------------------- stimuli -> events, instructions


def test_runs_under_the_cap_start_and_the_rest_queue_in_order():
    table, stream = make(cap=2)
    started = [submit(table, f)[1] for f in "abcd"]
    assert started == [True, True, False, False]
    assert [r.fqid for r in table.queued()] == ["c", "d"]
    assert drain(stream) == [("c", base.QUEUED, "ConcurrencyLimit"), ("d", base.QUEUED, "ConcurrencyLimit")]
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


# ---------------------------------------------------------------------- fair share, priority, resources


def _start_all(table: RunTable) -> list[str]:
    started = [r.fqid for r in table.take_queued()]
    for fqid in started:
        table.move(table.get(fqid), rs.RUNNING, "its wrapper started")
    return started


def test_a_small_job_behind_a_big_one_starts_at_the_next_free_slot():
    table, _ = make(cap=2)
    big = [submit(table, f"1.{i}")[0] for i in range(50)]
    for run in big[:2]:
        table.move(run, rs.RUNNING, "its wrapper started")
    submit(table, "2.0")
    table.finish(big[0], base.FINISHED, 0)
    assert _start_all(table) == ["2.0"]  # not 1.2: job 2 has no slot, job 1 has one
    table.finish(big[1], base.FINISHED, 0)
    assert _start_all(table) == ["1.2"]


def test_slots_are_shared_between_jobs_that_wait():
    table, _ = make(cap=4)
    for i in range(6):
        submit(table, f"1.{i}")
    for run in list(table):
        if run.state == rs.STARTING:
            table.move(run, rs.RUNNING, "its wrapper started")
    for i in range(6):
        submit(table, f"2.{i}")
    for run in [r for r in table if r.state == rs.RUNNING][:3]:
        table.finish(run, base.FINISHED, 0)
    # 1 slot in use by job 1, none by job 2: job 2 first, then turn about (a tie goes
    # to the job waiting longest)
    assert _start_all(table) == ["2.0", "1.4", "2.1"]
    table.finish(next(r for r in table if r.state == rs.RUNNING and r.job == "2"), base.FINISHED, 0)
    assert _start_all(table) == ["2.2"]  # job 1 has 2 slots, job 2 had 1
    table.finish(next(r for r in table if r.state == rs.RUNNING and r.job == "1"), base.FINISHED, 0)
    assert _start_all(table) == ["1.5"]  # 1 and 2


def test_a_job_whose_queue_emptied_and_filled_again_waits_from_its_new_arrival():
    """Found by the state machine: the job's new queue counted its heap versions from 0
    again, so an entry of its old queue (older arrival) looked current and jumped the line."""
    table, _ = make(cap=1)
    holder, _ = submit(table, "9.0")  # takes the one slot
    table.move(holder, rs.RUNNING, "its wrapper started")
    first, _ = submit(table, "1.0")  # job 1 waits first ...
    table.drop(first)  # ... then has nothing waiting
    submit(table, "2.0")
    submit(table, "1.1")  # job 1 waits again, after job 2
    table.finish(holder, base.FINISHED, 0)
    assert _start_all(table) == ["2.0"]


def test_a_higher_priority_job_goes_first_and_says_why_the_others_wait():
    table, stream = make(cap=1)
    first, _ = submit(table, "1.0")
    table.move(first, rs.RUNNING, "its wrapper started")
    submit(table, "1.1")
    submit(table, "2.0", priority=5)
    submit(table, "3.0", priority=-1)
    table.finish(first, base.FINISHED, 0)
    assert [r.fqid for r in table.queued()] == ["2.0", "1.1", "3.0"]
    assert _start_all(table) == ["2.0"]
    queued = [(e[0], e[2]) for e in drain(stream) if e[1] == base.QUEUED]
    assert queued == [("1.1", "ConcurrencyLimit"), ("2.0", "ConcurrencyLimit"), ("3.0", "ConcurrencyLimit")]


def test_a_subjob_asking_for_two_cpus_takes_two_slots_and_blocks_those_behind_it():
    table, stream = make(cap=4)
    wide, _ = submit(table, "1.0", Request(cpus=2))
    assert table.used_slots() == 2 and table.in_slots() == 1
    narrow = [submit(table, f"2.{i}")[0] for i in range(2)]
    assert table.used_slots() == 4
    submit(table, "3.0", Request(cpus=3))
    submit(table, "4.0")
    table.finish(narrow[0], base.FINISHED, 0)
    assert _start_all(table) == []  # 3.0 needs 3 of the 1 free: 4.0 waits behind it
    assert stream.poll(0, 0)[1][-1].note == "Local's concurrency limit 4 reached: needs 3, 1 free"
    table.finish(wide, base.FINISHED, 0)
    assert _start_all(table) == ["3.0"]
    assert table.used_slots() == 4


def test_gpus_are_given_lowest_first_and_come_back_when_the_run_is_done():
    table, stream = make(cap=4, pool=Pool([0, 1, 2]))
    a, _ = submit(table, "1.0", Request(gpus=2))
    b, started = submit(table, "2.0", Request(gpus=2))
    assert a.grant == Grant((0, 1), 0) and not started
    assert drain(stream)[-1] == ("2.0", base.QUEUED, "Resources")
    assert b.detail == ("Resources", "needs 2 GPUs, 1 of 3 free")
    c, _ = submit(table, "3.0")  # a free slot, but 2.0 waits first
    assert c.detail == ("Priority", "behind 2.0, which waits: needs 2 GPUs, 1 of 3 free")
    table.move(a, rs.RUNNING, "its wrapper started")
    table.move(a, rs.LINGERING, "its wrapper ended")
    assert _start_all(table) == []  # a lingering run still holds its GPUs
    table.finish(a, base.FINISHED, 0)
    assert _start_all(table) == ["2.0", "3.0"]
    assert b.grant == Grant((0, 1), 0) and c.grant == Grant((), 0)


def test_memory_is_reserved_while_a_run_holds_it():
    table, _ = make(cap=4, pool=Pool(memory_mb=4096))
    submit(table, "1.0", Request(memory_mb=3072))
    run, started = submit(table, "2.0", Request(memory_mb=4096))
    assert not started and run.detail == ("Resources", "needs 4096 MB, 1024 MB unreserved")


def test_a_request_the_actor_could_never_hold_is_refused_in_one_line():
    table, _ = make(cap=2, pool=Pool([0, 1], memory_mb=1024))
    assert table.add(new_run("1.0", Request(gpus=3))) == "asks for 3 GPUs; this machine has 2 (ids 0, 1)"
    assert table.add(new_run("1.1", Request(cpus=3))) == "asks for 3 CPUs; Local's concurrency limit is 2"
    assert table.add(new_run("1.2", Request(memory_mb=2048))) == \
        "asks for 2048 MB of memory; this machine has 1024 MB"
    assert len(table) == 0


def test_an_adopted_run_holds_again_what_its_handle_says():
    table, _ = make(cap=4, pool=Pool([0, 1], memory_mb=4096))
    adopted = Run("1.0", "/w/1.0", "repo:1.0", Handle("Test", "1.0", pid=7, cpus=2, memory_mb=1024,
                                                      gpu_ids=(1,)))
    assert table.add(adopted) == ""
    table.move(adopted, rs.RUNNING, "adopted: its wrapper still runs")
    assert table.used_slots() == 2 and adopted.grant == Grant((1,), 1024)
    run, _ = submit(table, "2.0", Request(gpus=1))
    assert run.grant == Grant((0,), 0)
    table.finish(adopted, base.KILLED, note="killed")
    assert table.pool.gpus.free == 1 and table.pool.reserved_mb == 0


def test_killing_one_queued_of_many_leaves_the_rest_in_order():
    table, _ = make(cap=1)
    runs = [submit(table, f"1.{i}")[0] for i in range(10_000)]
    table.drop(runs[5_000])
    assert table.count(rs.QUEUED) == 9_998 and len(table._queues["1"].runs) == 9_999  # lazy: O(1)
    table.finish(runs[0], base.FINISHED, 0)
    assert _start_all(table) == ["1.1"]


# ---------------------------------------------------------------------- random stimuli


CAP, GPUS, MEMORY = 4, (0, 1, 2), 4096


class RunTableMachine(RuleBasedStateMachine):
    """Random submits (of a few jobs, with priorities, CPUs, GPUs and memory), starts,
    ends, lingers, kills and followers primed for running runs (started in their
    leader's slot when it ends); after each, the invariants, and every pick checked
    against a plain reference of the rule (fair share, priority, the head blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.table, self.stream = make(cap=CAP, pool=Pool(GPUS, MEMORY))
        self.names = iter(range(10**6))
        self.submitted: list[str] = []
        self.followers: dict[str, Run] = {}  # leader's fqid -> its primed follower
        self.finals: dict[str, int] = {}
        self.since = 0

    def _runs(self, *states: str) -> list[Run]:
        return [r for r in self.table if r.state in states]

    def _collect(self) -> None:
        self.since, events = self.stream.poll(self.since, timeout=0)
        for event in events:
            if event.kind in (base.FINISHED, base.KILLED, base.LOST):
                self.finals[event.fqid] = self.finals.get(event.fqid, 0) + 1

    @rule(job=st.integers(1, 3), cpus=st.sampled_from([0.5, 1, 2]), gpus=st.integers(0, 2),
          memory=st.sampled_from([None, 1024, 3072]))
    def submit(self, job, cpus, gpus, memory) -> None:
        fqid = f"{job}.{next(self.names)}"
        self.submitted.append(fqid)
        submit(self.table, fqid, Request(cpus, gpus, memory), priority=int(job == 3))

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
        self._hand_over(run)

    def _hand_over(self, leader: Run) -> None:
        """The leader's wrapper ended (after its event): its follower started in its slot."""
        follower = self.followers.pop(leader.fqid, None)
        if follower is not None and follower.state == rs.PRIMED:
            self.table.move(follower, rs.RUNNING, "the run it follows ended")

    @precondition(lambda self: [r for r in self._runs(rs.RUNNING) if r.fqid not in self.followers])
    @rule(data=st.data(), spawned=st.booleans())
    def prime(self, data, spawned) -> None:
        leader = data.draw(st.sampled_from([r for r in self._runs(rs.RUNNING)
                                            if r.fqid not in self.followers]))
        expected = self._reference_follower(leader)
        follower = self.table.take_follower(leader)
        assert follower is expected
        if follower is None:
            return
        assert follower.state == rs.PRIMING and follower.grant is None
        if spawned:
            self.table.move(follower, rs.PRIMED, "its wrapper waits")
            self.followers[leader.fqid] = follower
        else:
            self.table.move(follower, rs.QUEUED, "its wrapper could not be spawned", first=True)

    def _reference_follower(self, leader: Run) -> Run | None:
        """The rule, plainly: the run the next pick would take, if it fits the leader's
        slot alone and asks nothing of the pool."""
        waiting = sorted(self._runs(rs.QUEUED), key=lambda r: r.queued_seq)
        if not waiting:
            return None
        in_use = collections.Counter()
        for run in self._runs(*rs.SLOT_STATES):
            in_use[run.job] += run.slots
        arrival = {run.job: self.table._queues[run.job].arrival for run in waiting}
        job = min({r.job for r in waiting}, key=lambda j: (
            -next(r.priority for r in waiting if r.job == j), in_use[j], arrival[j]))
        run = next(r for r in waiting if r.job == job)
        trivial = not run.request.gpus and run.request.memory_mb is None
        return run if run.slots <= leader.slots and trivial else None

    @precondition(lambda self: self._runs(rs.PRIMED))
    @rule(data=st.data())
    def follower_ends_unstarted(self, data) -> None:
        run = data.draw(st.sampled_from(self._runs(rs.PRIMED)))
        self.table.finish(run, base.LOST, note="its wrapper ended while it waited")

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
            self._hand_over(run)

    @rule()
    def fill(self) -> None:
        expected = self._reference_batch()
        assert self.table.take_queued() == expected

    def _reference_batch(self) -> list[Run]:
        """The rule, plainly: the job first by (higher priority, fewer slots in use, waiting
        longest) starts its oldest waiting run, while that one fits."""
        waiting = sorted(self._runs(rs.QUEUED), key=lambda r: r.queued_seq)
        in_use = collections.Counter()
        for run in self._runs(*rs.SLOT_STATES):
            in_use[run.job] += run.slots
        used, pool = sum(in_use.values()), self.table.pool
        gpus, memory = pool.gpus.free, pool.memory_mb - pool.reserved_mb
        arrival = {run.job: self.table._queues[run.job].arrival for run in waiting}
        batch = []
        while waiting:
            job = min({r.job for r in waiting}, key=lambda j: (
                -next(r.priority for r in waiting if r.job == j), in_use[j], arrival[j]))
            run = next(r for r in waiting if r.job == job)
            if used + run.slots > CAP or run.request.gpus > gpus or (run.request.memory_mb or 0) > memory:
                return batch
            batch.append(run)
            waiting.remove(run)
            in_use[job] += run.slots
            used, gpus = used + run.slots, gpus - run.request.gpus
            memory -= run.request.memory_mb or 0
        return batch

    @invariant()
    def no_slot_gpu_or_memory_is_overcommitted(self) -> None:
        in_slots = self._runs(*rs.SLOT_STATES)
        assert self.table.used_slots() == pytest.approx(sum(r.slots for r in in_slots))
        assert self.table.used_slots() <= CAP
        held = [i for r in self.table if r.grant is not None for i in r.grant.gpu_ids]
        assert len(held) == len(set(held)), "a GPU id held by two runs"
        pool = self.table.pool
        assert pool.gpus.free + len(held) == len(GPUS)
        reserved = sum(r.grant.memory_mb for r in self.table if r.grant is not None)
        assert pool.reserved_mb == reserved <= MEMORY
        for run in self.table:
            holds = run.state in (rs.STARTING, rs.PENDING, rs.RUNNING, rs.LINGERING)
            assert (run.grant is not None) == holds

    @invariant()
    def each_subjob_ends_once_and_only_ended_ones_are_forgotten(self) -> None:
        self._collect()
        assert all(count == 1 for count in self.finals.values())
        for fqid in self.submitted:
            assert (self.table.get(fqid) is None) == (fqid in self.finals)
        assert self.table.count(rs.QUEUED) == len(self.table.queued())


TestRunTableMachine = RunTableMachine.TestCase
TestRunTableMachine.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)


def test_the_architecture_page_shows_the_run_state_table_from_the_code():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    begin, end = "<!-- run-table:begin -->", "<!-- run-table:end -->"
    shown = text[text.index(begin) + len(begin):text.index(end)].strip()
    assert shown == rs.table_markdown(), "docs/architecture.md's run-state table is out of date"
