"""A few rounds of the fault-injection soak in every ``make test`` (``make soak``: 100+):
one SIGKILL of the service, one of a client, one power cut, as a new user runs them."""

from __future__ import annotations

from tests.faults import soak


def test_a_few_rounds_of_sigkill_leave_nothing_stuck_lost_or_leaked(tmp_path):
    rounds = soak.run(rounds=3, seed=20261128, base=tmp_path, echo=lambda _line: None,
                      every_victim=True)
    assert [r.split("SIGKILL of the ")[1].split(" after")[0] for r in rounds] == \
        ["client", "power cut", "service"]
