"""The master rule under random subjob traffic: a Hypothesis state machine.

A master with 1..30 subjobs is split in memory exactly as ``submit()`` splits one;
rules move random subjobs along random legal edges through ``set_status`` (the one
function that changes a status) and now and then try an illegal edge, which must
raise and change nothing. After every step the master's derived status must equal
the master rule over its subjobs, and the counts kept on the master must equal a
full recount.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ganga_like.engine.core import _split
from ganga_like.errors import InvalidTransition
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import UNDER_WAY, set_status
from ganga_like.model.splitters import ArgSplitter
from ganga_like.status import Status, allowed_targets, master_status, master_status_of

ALL = list(Status)


class MasterMachine(RuleBasedStateMachine):
    master: Job
    legal_changes: int

    @initialize(n=st.integers(min_value=1, max_value=30))
    def split_a_master(self, n: int) -> None:
        master = Job(
            application=Executable(exe="/bin/echo"),
            splitter=ArgSplitter(args=[[str(i)] for i in range(n)]),
        )
        master.id = 42
        _split(master)
        self.master = master
        self.n = n
        self.legal_changes = 0
        self.clock = 1000.0

    def _subjob(self, data: st.DataObject) -> Job:
        index = data.draw(st.integers(0, self.n - 1), label="subjob")
        return self.master.subjobs[index]

    def _tick(self) -> float:
        self.clock += 1.0
        return self.clock

    @rule(data=st.data())
    def legal_move(self, data: st.DataObject) -> None:
        sub = self._subjob(data)
        # 'removed' is left out: removal deletes the job rather than keeping it counted.
        targets = sorted(t.value for t in allowed_targets(sub.status) - {Status.REMOVED})
        if not targets:
            return
        target = data.draw(st.sampled_from(targets), label="target")
        before = sub.status
        master_before = self.master.status
        master_history_before = len(self.master.history)
        self.history_before = self.master.history
        now = self._tick()

        assert set_status(sub, target, note="machine", source="system", now=now) is before

        self.legal_changes += 1
        assert sub.history[-1] == (now, before.value, target, "machine", "system", None)
        # The master records a 'derived' entry only when its own status changes; a move
        # that undoes its last derived entry takes that entry back instead.
        if self.master.status is master_before:
            assert len(self.master.history) == master_history_before
        elif len(self.master.history) == master_history_before - 1:
            assert {master_before.value, self.master.status.value} <= UNDER_WAY
            assert self.master.history == self.history_before[:-1]
            assert self.history_before[-1][1:3] == (self.master.status.value, master_before.value)
            assert self.history_before[-1][4] == "derived"
        else:
            assert len(self.master.history) == master_history_before + 1
            assert self.master.history[-1][1:3] == (master_before.value, self.master.status.value)
            assert self.master.history[-1][4] == "derived"

    @precondition(lambda self: self.legal_changes % 3 == 0)  # "occasionally"
    @rule(data=st.data())
    def illegal_move_is_refused_and_changes_nothing(self, data: st.DataObject) -> None:
        sub = self._subjob(data)
        forbidden = [s.value for s in ALL if s not in allowed_targets(sub.status)]
        target = data.draw(st.sampled_from(forbidden), label="forbidden target")
        snapshot = (sub._status, sub.history, dict(self.master._counts.counts),
                    self.master.history)
        try:
            set_status(sub, target, now=self._tick())
        except InvalidTransition as err:
            assert err.job_id == sub.fqid
            assert err.to_status == target
        else:
            raise AssertionError(f"{sub.status}->{target} was accepted")
        assert (sub._status, sub.history, dict(self.master._counts.counts),
                self.master.history) == snapshot

    @invariant()
    def master_status_follows_the_rule(self) -> None:
        statuses = [sub.status for sub in self.master.subjobs]
        by_rule = master_status_of(statuses)
        assert self.master.status is by_rule
        assert master_status(self.master._counts.counts) is by_rule

    @invariant()
    def master_history_tells_its_steps(self) -> None:
        """Its last entry is where it is; no entry among statuses of work under way undoes
        the one before it (a flip back and forth as slots refill adds nothing, so the
        record stays small)."""
        history = self.master.history
        if history:
            assert history[-1][2] == self.master.status.value
        for earlier, later in itertools.pairwise(history):
            assert (later[1], later[2]) != (earlier[2], earlier[1]) or \
                not {later[1], later[2]} <= UNDER_WAY

    @invariant()
    def counts_equal_a_full_recount(self) -> None:
        recount = Counter(sub._status for sub in self.master.subjobs)
        assert dict(self.master._counts.counts) == dict(recount)
        assert len(self.master.subjobs) == self.n

    @invariant()
    def history_grows_by_one_entry_per_legal_change(self) -> None:
        assert sum(len(sub.history) for sub in self.master.subjobs) == self.legal_changes
        for sub in self.master.subjobs:
            last = sub.history[-1][2] if sub.history else Status.NEW.value
            assert last == sub._status


MasterMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,  # the first example pays for imports; wall time is bounded by the sizes
    suppress_health_check=[HealthCheck.too_slow],
)
TestMasterMachine = MasterMachine.TestCase


@pytest.mark.parametrize("n", [1, 30])
def test_driving_every_subjob_to_completed_gives_a_completed_master(n):
    """A deterministic path through the machine, so a regression fails readably too."""
    master = Job(splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
    master.id = 1
    _split(master)
    path = ["submitting", "submitted", "running", "completing", "completed"]
    for step in path:
        for sub in master.subjobs:
            set_status(sub, step)
            assert master.status is master_status_of(s.status for s in master.subjobs)
        assert master.status is Status(step)
    assert [h[2] for h in master.history] == path
