"""A few rounds of the fault-injection soak in every ``make test`` (``make soak``: 100+)."""

from __future__ import annotations

from tests.faults import soak


def test_a_few_rounds_of_sigkill_leave_nothing_stuck_lost_or_leaked(tmp_path):
    rounds = soak.run(rounds=3, seed=20261128, base=tmp_path, echo=lambda _line: None)
    assert len(rounds) == 3
