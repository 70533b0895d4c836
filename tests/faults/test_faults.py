"""A few rounds of the fault-injection soak in every ``make test`` (``make soak``: 100+):
one SIGKILL of the service, one of a client, one power cut, and a crowd of clients at
once with a SIGKILL of the service among them, as a new user runs them."""

from __future__ import annotations

from tests.faults import soak


def test_a_few_rounds_of_sigkill_leave_nothing_stuck_lost_or_leaked(tmp_path):
    rounds = soak.run(rounds=3, seed=20261128, base=tmp_path, echo=lambda _line: None,
                      every_victim=True)
    assert [r.split("SIGKILL of the ")[1].split(" after")[0] for r in rounds] == \
        ["client", "power cut", "service"]


def test_clients_at_once_with_every_verb_and_a_service_kill_end_cleanly_and_leave_nothing(tmp_path):
    """Four scripts do every verb on the same jobs at once; the service is stopped among
    them, the next one SIGKILLed, and the next stopped. Before the clients' reads started the next
    service, a read cut off by the kill (iterating ``jobs``) ended the script with ZEO's
    ``ClientDisconnected``; and a commit during the stop failed in its last phase."""
    soak_ = soak.Soak(tmp_path, seed=20261207)
    try:
        what = soak_.crowd(1)
    finally:
        soak_.finish()
    assert "SIGKILL of the service" in what and "`service stop`" in what, what
