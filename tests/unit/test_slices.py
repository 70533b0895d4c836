"""Registry slices: selection, indexing, the table, and the verbs job by job (pure)."""

from __future__ import annotations

import pytest

from ganga_like.errors import GangaLikeError, JobError, JobNotFound
from ganga_like.model.slices import JobSlice, SliceErrors, select_jobs


class _Fake:
    """A job stand-in that records the verbs it is asked for."""

    def __init__(self, job_id: int, refuse: bool = False) -> None:
        self.id, self.fqid, self.refuse, self.asked = job_id, str(job_id), refuse, []

    def kill(self) -> None:
        self.asked.append("kill")
        if self.refuse:
            raise JobError(self.fqid, "kill", "completed", "nothing to kill")

    def remove(self, force: bool = False) -> None:
        self.asked.append(("remove", force))


def test_select_by_id_status_name_application_and_backend(make_master):
    subs = list(make_master(5).subjobs)
    assert [j.id for j in select_jobs(subs, id=[1, 3])] == [1, 3]
    assert len(select_jobs(subs, status="new", application="Executable")) == 5
    assert select_jobs(subs, application="Other") == []
    assert select_jobs(subs, backend="NoSuchBackend") == []


def test_a_slice_indexes_and_calls_by_id_as_ganga_and_negative_by_position():
    jobs = JobSlice([_Fake(4), _Fake(7), _Fake(9)])
    assert jobs[7].id == 7 and jobs(9).id == 9 and jobs.ids() == [4, 7, 9] and len(jobs) == 3
    assert jobs[-1].id == 9 and jobs[-3].id == 4
    with pytest.raises(JobNotFound, match=r"\[4, 7, 9\]"):
        jobs[0]
    with pytest.raises(JobNotFound, match=r"\[4, 7, 9\]"):
        jobs[-4]
    assert isinstance(jobs[1:], JobSlice) and jobs[1:].ids() == [7, 9]
    assert jobs.select(5, 8).ids() == [7]
    with pytest.raises(JobNotFound, match=r"\[4, 7, 9\]"):
        jobs(5)


def test_the_first_refusal_stops_the_others_unless_keep_going():
    first = JobSlice([_Fake(1), _Fake(2, refuse=True), _Fake(3)])
    with pytest.raises(JobError):
        first.kill()
    assert [j.asked for j in first] == [["kill"], ["kill"], []]
    going = JobSlice([_Fake(1, refuse=True), _Fake(2), _Fake(3, refuse=True)])
    with pytest.raises(SliceErrors) as info:
        going.kill(keep_going=True)
    assert all(j.asked == ["kill"] for j in going)
    assert isinstance(info.value, GangaLikeError) and "\n" not in str(info.value)
    assert "refused for 2 of 3" in str(info.value) and info.value.failures[0].startswith("1: ")


def test_force_reaches_the_verb_and_the_table_has_one_footer(make_master):
    jobs = JobSlice([_Fake(1), _Fake(2)])
    jobs.remove(force=True)
    assert [j.asked for j in jobs] == [[("remove", True)], [("remove", True)]]
    chosen = make_master(3).subjobs.select(status="new")
    assert isinstance(chosen, JobSlice) and len(chosen) == 3
    table = repr(chosen)
    assert table.rstrip().endswith("3 subjobs") and table.count("subjobs\n") == 0


def test_a_verb_of_a_slice_refuses_a_keep_going_that_is_not_a_boolean():
    from ganga_like.errors import InvalidValue

    subs = JobSlice([], "jobs")
    with pytest.raises(InvalidValue) as error:
        subs.remove(10)  # a Ganga user's "remove job 10" must not remove every job
    assert "keep_going" in str(error.value) and "jobs(id).remove()" in str(error.value)
    assert "\n" not in str(error.value)
    assert subs.remove(1) is None and subs.kill(False) is None  # 1 and 0 are Python's booleans too


def test_every_ganga_exception_name_is_one_of_ours():
    import ganga_like.gpi as gpi
    from ganga_like.errors import GANGA_NAMES, GangaLikeError

    for name in GANGA_NAMES:
        assert issubclass(getattr(gpi, name), GangaLikeError) and name in gpi.__all__, name
