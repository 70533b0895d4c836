"""The host-status table (pure): the one checked move, its docs copy, a Hypothesis machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ganga_like.backends.hosts import host_states as hs
from ganga_like.errors import GangaLikeError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "backends.md"


def _shown(begin: str, end: str) -> str:
    text = DOCS.read_text()
    return text[text.index(begin) + len(begin):text.index(end)].strip()


def test_docs_show_the_host_status_table_and_the_protections_from_the_code():
    assert _shown("<!-- host-table:begin -->", "<!-- host-table:end -->") == hs.table_markdown(), (
        "docs/backends.md's host-status table is out of date: paste host_states.table_markdown()")
    assert _shown("<!-- protections:begin -->", "<!-- protections:end -->") == hs.protections_markdown()


def test_every_status_is_reached_and_left_and_each_edge_says_why():
    targets = {dst for _src, dst in hs.HOST_MOVES}
    sources = {src for src, _dst in hs.HOST_MOVES}
    assert targets == sources == set(hs.HOST_STATUSES)
    assert all(why and "\n" not in why for why in hs.HOST_MOVES.values())
    # No check or cleanup starts on a host held by a running subjob: it must end first.
    assert not any((hs.RUNNING, dst) in hs.HOST_MOVES for dst in (hs.VERIFYING, hs.REPAIRING, hs.PENDING))


def test_a_refused_move_is_one_line_naming_the_allowed_ones():
    state = hs.HostState("n1", status=hs.RUNNING)
    with pytest.raises(hs.HostStateError) as error:
        hs.move_host(state, hs.VERIFYING, "a second subjob")
    assert str(error.value) == ("host n1 cannot move Running -> Verifying (a second subjob); "
                                "from Running it may move to: Cleaning, Ready, Repair Failed")
    assert isinstance(error.value, GangaLikeError) and state.status == hs.RUNNING and not state.history


def test_protections_decide_what_verify_and_repair_may_do():
    policy = {name: (p.verify, p.clear_scratch, p.repair_command) for name, p in hs.PROTECTIONS.items()}
    assert policy == {hs.NO_PROTECTION: (True, True, True), hs.REPAIR_SOFTWARE_ONLY: (True, False, True),
                      hs.REPAIR_FILESYSTEM_ONLY: (True, True, False), hs.DO_NOT_REPAIR: (True, False, False),
                      hs.DO_NOT_VERIFY: (False, False, False)}
    assert set(hs.PROTECTION_OF_WORD) == {p.word for p in hs.PROTECTIONS.values()}


class HostMachine(RuleBasedStateMachine):
    """Any sequence of asked moves: a move happens iff the table has it; the history tells it."""

    def __init__(self) -> None:
        super().__init__()
        self.state = hs.HostState("h")
        self.expected = hs.READY
        self.moves = 0

    @rule(dst=st.sampled_from(hs.HOST_STATUSES))
    def ask(self, dst: str) -> None:
        legal = (self.expected, dst) in hs.HOST_MOVES
        try:
            hs.move_host(self.state, dst, "asked")
        except hs.HostStateError as error:
            assert not legal and error.fields["allowed"] == sorted(
                t for (f, t) in hs.HOST_MOVES if f == self.expected)
            return
        assert legal
        self.history_tail = (self.expected, dst, "asked")
        self.expected = dst
        self.moves += 1

    @invariant()
    def status_and_history_agree(self) -> None:
        assert self.state.status == self.expected in hs.HOST_STATUSES
        assert len(self.state.history) == min(self.moves, 20)
        if self.moves:
            assert self.state.history[-1] == self.history_tail
            assert all(a[1] == b[0] for a, b in zip(self.state.history, self.state.history[1:], strict=False))


TestHostMachine = HostMachine.TestCase
TestHostMachine.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
