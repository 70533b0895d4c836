"""The status enum, the one transition table, and the master rule (ganga_like.status)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ganga_like.errors import InvalidTransition, OperationRefused, UnknownStatus
from ganga_like.model.lifecycle import HISTORY_SHOWN_IN_ERRORS, set_status
from ganga_like.model.writes import writing
from ganga_like.status import (
    ACTIVE,
    FINAL,
    FROZEN,
    MASTER_PRIORITY,
    TRANSIENT,
    TRANSITIONS,
    Status,
    allowed_targets,
    check_transition,
    history_entries,
    is_allowed,
    master_status,
    master_status_of,
)

S = Status
LEGAL = sorted(TRANSITIONS, key=lambda e: (e[0].value, e[1].value))
ILLEGAL = [
    (src, dst)
    for src, dst in itertools.product(Status, Status)
    if (src, dst) not in TRANSITIONS
]


def _edge_id(edge: tuple[Status, Status]) -> str:
    return f"{edge[0].value}->{edge[1].value}"


# --- the enum ------------------------------------------------------------------------


def test_status_compares_equal_to_its_name_as_ganga_scripts_expect():
    assert S.COMPLETED == "completed"
    assert "running" == S.RUNNING
    assert str(S.FAILED_FROZEN) == "failed_frozen"
    assert f"{S.NEW}" == "new"


def test_parse_accepts_a_status_a_name_and_any_case():
    assert Status.parse(S.KILLED) is S.KILLED
    assert Status.parse("submitted") is S.SUBMITTED
    assert Status.parse("RUNNING") is S.RUNNING


@pytest.mark.parametrize("bad", ["finished", "", "complete", 3, None])
def test_parse_of_a_bad_name_raises_unknown_status_listing_every_valid_name(bad):
    with pytest.raises(UnknownStatus) as info:
        Status.parse(bad)
    err = info.value
    assert err.value == bad
    assert set(err.valid) == {s.value for s in Status}
    text = str(err)
    assert "\n" not in text
    assert repr(bad) in text
    for status in Status:
        assert status.value in text


# --- the named sets --------------------------------------------------------------------


def test_named_sets_hold_exactly_ganga_groupings():
    assert ACTIVE == {S.SUBMITTING, S.SUBMITTED, S.RUNNING, S.COMPLETING}
    assert FINAL == {S.COMPLETED, S.FAILED, S.KILLED, S.COMPLETED_FROZEN, S.FAILED_FROZEN}
    assert FROZEN == {S.COMPLETED_FROZEN, S.FAILED_FROZEN}
    assert TRANSIENT == {S.INCOMPLETE, S.UNKNOWN, S.REMOVED}


def test_named_sets_relate_as_documented():
    assert FROZEN <= FINAL
    assert not ACTIVE & FINAL
    assert not ACTIVE & TRANSIENT
    assert not FINAL & TRANSIENT


def test_membership_works_with_plain_strings():
    # str-enum hashing: 'running' in ACTIVE is what a Ganga-style script writes.
    assert "running" in ACTIVE
    assert "completed" in FINAL
    assert "new" not in ACTIVE


# --- the table: every legal edge --------------------------------------------------------


def test_table_contains_the_core_ganga_edges():
    for edge in [
        (S.NEW, S.SUBMITTING), (S.SUBMITTING, S.SUBMITTED), (S.SUBMITTED, S.RUNNING),
        (S.RUNNING, S.COMPLETING), (S.COMPLETING, S.COMPLETED), (S.RUNNING, S.FAILED),
        (S.RUNNING, S.KILLED), (S.FAILED, S.SUBMITTING), (S.COMPLETED, S.COMPLETED_FROZEN),
        (S.COMPLETED_FROZEN, S.COMPLETED), (S.FAILED_FROZEN, S.FAILED),
    ]:
        assert edge in TRANSITIONS, _edge_id(edge)


def test_table_has_no_self_loops_and_removed_is_a_dead_end():
    assert all(src is not dst for src, dst in TRANSITIONS)
    assert allowed_targets(S.REMOVED) == frozenset()


def test_allowed_targets_agrees_with_the_table_for_every_status():
    for status in Status:
        expected = {dst for (src, dst) in TRANSITIONS if src is status}
        assert allowed_targets(status) == expected
        assert allowed_targets(status.value) == expected


@pytest.mark.parametrize("edge", LEGAL, ids=_edge_id)
def test_every_legal_edge_passes_check_transition(edge):
    src, dst = edge
    assert check_transition("1", src, dst) == TRANSITIONS[edge]
    assert check_transition("1", src.value, dst.value) == TRANSITIONS[edge]  # names too
    assert is_allowed(src, dst)


@pytest.mark.parametrize("edge", LEGAL, ids=_edge_id)
def test_every_legal_edge_passes_set_status_and_is_recorded(edge, make_job_in):
    src, dst = edge
    job = make_job_in(src.value)
    job.history = ((1.0, "x", src.value, "setup", "test"),)
    with writing() as write:
        previous = set_status(job, dst, note="because", source="user", now=1234.5)
    changes = write.changes
    assert previous is src
    assert job.status is dst
    # Exactly one entry appended: (time, from, to, note, source, cause): no cause outside one.
    assert job.history[-1] == (1234.5, src.value, dst.value, "because", "user", None)
    assert len(job.history) == 2
    assert [(c.fqid, c.source, c.target) for c in changes] == [("1", src.value, dst.value)]


def test_set_status_stamps_the_current_time_when_none_is_given(make_job_in):
    import time

    job = make_job_in("new")
    before = time.time()
    set_status(job, "submitting")
    assert before <= job.history[-1][0] <= time.time()


def test_set_status_records_the_reason_of_a_failure(make_job_in):
    job = make_job_in("running")
    set_status(job, "failed", note="exit code 3")
    assert job.reason == "exit code 3"


# --- the table: every illegal pair -------------------------------------------------------


@pytest.mark.parametrize("edge", ILLEGAL, ids=_edge_id)
def test_every_illegal_pair_raises_invalid_transition_with_structured_fields(edge):
    src, dst = edge
    recent = ((10.0, "new", "submitting", "", "user"),)
    with pytest.raises(InvalidTransition) as info:
        check_transition("3.14", src, dst, recent)
    err = info.value
    assert err.job_id == "3.14"
    assert err.from_status == src.value
    assert err.to_status == dst.value
    assert set(err.allowed) == {t.value for t in allowed_targets(src)}
    assert err.recent_history == recent
    text = str(err)
    assert "\n" not in text
    assert "3.14" in text and f"'{src.value}'" in text and f"'{dst.value}'" in text


@pytest.mark.parametrize("edge", ILLEGAL, ids=_edge_id)
def test_every_illegal_pair_is_refused_by_set_status_and_changes_nothing(edge, make_job_in):
    src, dst = edge
    job = make_job_in(src.value)
    history = tuple((float(i), "a", "b", f"n{i}", "user") for i in range(5))
    job.history = history
    with writing() as write, pytest.raises(InvalidTransition) as info:
        set_status(job, dst)
    changes = write.changes
    assert job._status == src.value
    assert job.history == history
    assert changes == []
    # The error shows the last few history entries, so the user sees how it got here.
    assert info.value.recent_history == tuple(history_entries(history[-HISTORY_SHOWN_IN_ERRORS:]))


def test_illegal_message_names_the_allowed_targets_and_recent_history():
    err = pytest.raises(
        InvalidTransition, check_transition, "5", "completed", "running",
        ((0.0, "running", "completed", "", "monitor"),),
    ).value
    text = str(err)
    for target in allowed_targets("completed"):
        assert target.value in text
    assert "running->completed" in text


def test_a_status_with_no_way_out_says_so():
    err = pytest.raises(InvalidTransition, check_transition, "5", "removed", "new").value
    assert err.allowed == ()
    assert "none" in str(err)


def test_set_status_to_an_unknown_name_raises_unknown_status(make_job_in):
    job = make_job_in("new")
    with pytest.raises(UnknownStatus):
        set_status(job, "finished")
    assert job.history == ()


def test_a_masters_status_cannot_be_set(make_master):
    master = make_master(2)
    with pytest.raises(OperationRefused) as info:
        set_status(master, "submitting")
    assert "derived" in str(info.value)
    assert master.status is S.NEW


# --- the master rule ---------------------------------------------------------------------


def test_master_priority_is_the_documented_order():
    assert MASTER_PRIORITY == (
        S.SUBMITTING, S.RUNNING, S.SUBMITTED, S.COMPLETING, S.UNKNOWN,
        S.FAILED, S.KILLED, S.NEW, S.COMPLETED,
    )
    # The docs say what the code does (docs/concepts.md, "The master rule").
    text = (Path(__file__).resolve().parents[2] / "docs" / "concepts.md").read_text()
    assert ", ".join(f"`{s.value}`" for s in MASTER_PRIORITY) in " ".join(text.split())


@pytest.mark.parametrize(
    "subjobs, expected",
    [
        (["completed", "completed"], "completed"),
        (["completed", "failed"], "failed"),
        (["killed", "completed"], "killed"),
        (["failed", "killed"], "failed"),
        (["new", "completed"], "new"),  # Ganga ignores 'new' here (its bug #862); we do not
        (["running", "completed", "failed"], "running"),
        (["running", "submitting"], "submitting"),
        (["submitted", "running"], "running"),  # work under way: running (Ganga: submitted)
        (["submitted", "completing", "completed"], "submitted"),
        (["completing", "failed"], "completing"),
        (["unknown", "failed", "completed"], "unknown"),
        (["running", "unknown"], "running"),
        (["completed_frozen", "failed"], "failed"),
        (["failed_frozen", "running"], "running"),
        (["failed_frozen", "completed"], "completed"),
        (["completed_frozen", "failed_frozen"], "completed"),  # all frozen -> completed
        (["failed_frozen"], "completed"),
        ([], "completed"),  # nothing counted -> completed
    ],
)
def test_master_rule_examples(subjobs, expected):
    assert master_status_of(subjobs) is Status(expected)
    counts: dict[str, int] = {}
    for s in subjobs:
        counts[s] = counts.get(s, 0) + 1
    assert master_status(counts) is Status(expected)


def test_master_rule_ignores_zero_counts():
    assert master_status({"running": 0, "completed": 3}) is S.COMPLETED
    assert master_status({}) is S.COMPLETED


def test_master_rule_accepts_status_keys_and_rejects_unknown_names():
    assert master_status({S.FAILED: 1, S.COMPLETED: 9}) is S.FAILED
    with pytest.raises(UnknownStatus):
        master_status({"finished": 1})
