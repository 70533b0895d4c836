"""A master's j.time from its subjobs, as Ganga shows it (issue 19): the counts record keeps
the earliest and latest time its subjobs reached each stamp, merged on conflicts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ganga_like.model.counts import StatusCounts
from ganga_like.model.jobtime import stamp_names


def test_the_stamps_an_entry_reaches():
    assert stamp_names("new", "submitting", False) == ("submitting",)
    assert stamp_names("killed", "submitting", True) == ("submitting", "resubmitted")
    assert stamp_names("submitted", "running", False) == ("running", "backend_running")
    assert stamp_names("running", "failed", False) == ("failed", "final", "backend_final")
    assert stamp_names("submitting", "failed", False) == ("failed", "final")  # never ran
    assert stamp_names("running", "killed", False) == ("killed", "final")


times = st.lists(st.floats(min_value=1e9, max_value=2e9), min_size=1, max_size=6)


@given(base=times, ours=times, theirs=times)
def test_concurrent_moves_merge_to_the_earliest_and_latest(base, ours, theirs):
    def state(stamps):
        counts = StatusCounts({"new": 100})
        for when in stamps:
            counts.move("new", "submitting", when=when, stamps=("submitting",))
        return counts.__getstate__()

    old, mine, other = state(base), state(base + ours), state(base + theirs)
    resolved = StatusCounts()._p_resolveConflict(old, other, mine)
    assert resolved["firsts"]["submitting"] == min(base + ours + theirs)
    assert resolved["lasts"]["submitting"] == max(base + ours + theirs)
    assert resolved["counts"]["submitting"] == len(base) + len(ours) + len(theirs)


def test_records_made_before_the_stamps_resolve_as_before():
    old = {"counts": {"new": 2}}
    resolved = StatusCounts()._p_resolveConflict(old, {"counts": {"new": 1, "submitting": 1}},
                                                 {"counts": {"new": 1, "failed": 1}})
    assert resolved == {"counts": {"submitting": 1, "failed": 1}}
