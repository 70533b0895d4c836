"""Ganga's registry slices: what ``jobs.select(...)``, ``jobs[2:]`` and
``j.subjobs.select(...)`` return.

A slice is a list of jobs that prints as one table and carries the verbs, applied to
each of its jobs in order: ``submit()``, ``kill()``, ``resubmit()``, ``remove()``,
``copy()``. As in Ganga, the first failure stops the others unless
``keep_going=True`` (then every job is tried and the failures are raised together,
one line each); ``force`` is passed on to the verbs that take it. As on ``jobs`` and
in Ganga, ``s[3]`` and ``s(3)`` are the job with id 3, ``s[-1]`` the slice's last job,
``s['name']`` its one job of that name; ``ids()``, ``len(s)``,
``select(...)`` and iteration work as on ``jobs``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from ..errors import GangaLikeError, InvalidValue, JobNotFound, UnknownAttribute
from ..status import Status
from .btree_fetch import Tree
from .index_fetch import fetch_filed
from .table import PrettyPrinter, jobs_listing, use_colour

R = TypeVar("R")

CRITERIA = ("status", "name", "id", "application", "backend")


def _type_name(value: Any) -> str | None:
    """``'Local'``, ``Local`` or ``Local()``: as in Ganga, only the type is compared."""
    if value is None or isinstance(value, str):
        return value
    return value.__name__ if isinstance(value, type) else type(value).__name__


def select_jobs(candidates: Iterable[Any], status: Any = None, name: str | None = None,
                id: Any = None, application: Any = None,  # noqa: A002 (Ganga's keyword)
                backend: Any = None, **unknown: Any) -> list[Any]:
    """Filter jobs by status (one or several), name glob, id (one or several), and the
    types of their application and backend (``'Executable'``, ``Executable`` or
    ``Executable()``: only the type is compared, as in Ganga)."""
    _refuse_unknown(unknown)
    application, backend = _type_name(application), _type_name(backend)
    wanted = None if status is None else wanted_statuses(status)
    ids = None if id is None else ({id} if isinstance(id, int) else set(id))
    out = []
    for job in candidates:
        if ids is not None and job.id not in ids:
            continue
        if wanted is not None and job.status.value not in wanted:
            continue
        if name is not None and not fnmatch.fnmatchcase(job.name, name):
            continue
        if application is not None and type(job.application).__name__ != application:
            continue
        if backend is not None and type(job.backend).__name__ != backend:
            continue
        out.append(job)
    return out


def _refuse_unknown(unknown: dict[str, object]) -> None:
    if unknown:
        wrong = next(iter(unknown))
        raise UnknownAttribute("select()", wrong, unknown[wrong], ("minid", "maxid") + CRITERIA)


def wanted_statuses(status: object) -> set[str]:
    """``'failed'``, ``Status.FAILED`` or a list of them, as status values; an unknown
    one is one line naming the valid statuses."""
    statuses = list(status) if isinstance(status, (list, tuple, set, frozenset)) else [status]
    return {Status.parse(s).value for s in statuses}


class Indexed(Protocol):
    """What an index-backed select reads of a (sub)job (``model.job.Job``)."""

    _p_changed: bool | None

    def _current_status(self) -> Status: ...


class StatusIndexView(Protocol):
    """What a select reads of an index (``status_index.StatusIndex``)."""

    @property
    def readable(self) -> bool: ...

    def ids(self, statuses: Iterable[str], minid: int | None = None,
            maxid: int | None = None) -> list[int]: ...

    def oids_of(self, ids: Sequence[int]) -> list[bytes | None]: ...


J = TypeVar("J", bound=Indexed)


def select_indexed(index: StatusIndexView | None, tree: Tree[J], master: object | None,
                   minid: int | None, maxid: int | None, found_wrong: Callable[[], None],
                   /, status: object = None, counted: Callable[[set[str]], int] | None = None,
                   **criteria: Any) -> list[J]:
    """``select_jobs`` over ``tree`` (an IOBTree id -> job), reading only the (sub)jobs
    the index files under the wanted statuses when a status is given and the index is
    readable. The matches are read by the oids the index keeps (``index_fetch``), each
    checked to be the (sub)job of its id under ``master`` (None: a top-level job); each
    match's own status is checked against the index (it is read anyway),
    and, over the whole tree, how many it found against ``counted`` (a master's
    ``StatusCounts``, kept apart from the index); a disagreement calls ``found_wrong``
    and the answer comes from a scan."""
    if status is None or index is None or not index.readable:
        return select_jobs(_values(tree, minid, maxid), status=status, **criteria)
    wanted = wanted_statuses(status)
    found = indexed_matches(index, tree, wanted, minid, maxid, counted, master)
    if found is None:
        found_wrong()
        return select_jobs(_values(tree, minid, maxid), status=status, **criteria)
    return select_jobs(found, **criteria)


def indexed_matches(index: StatusIndexView, tree: Tree[J], wanted: set[str],
                    minid: int | None = None, maxid: int | None = None,
                    counted: Callable[[set[str]], int] | None = None,
                    master: object | None = None) -> list[J] | None:
    """The (sub)jobs of ``tree`` the index files under ``wanted``, each checked: None if
    the index disagrees with a record or a status read, or with ``counted``."""
    ids = index.ids(wanted, minid, maxid)
    if counted is not None and minid is None and maxid is None and len(ids) != counted(wanted):
        return None
    found = fetch_filed(index, tree, ids, master)
    candidates = [job for job in found if job is not None]
    if len(candidates) < len(found) or any(
            job._current_status().value not in wanted for job in candidates):
        return None
    return candidates


def _values(tree: Tree[J], minid: int | None, maxid: int | None) -> Iterable[J]:
    return tree.values(minid, maxid)


class SliceErrors(GangaLikeError):
    """Some jobs of a slice refused a verb (``keep_going=True``): one line each."""


class SliceMember(Protocol):
    """What a slice asks of each of its jobs (``model.job.Job``, which is checked against
    it; job.py imports this module, so it is named by a protocol). A slice's verbs are
    each job's own (a template refuses them, a foreground backend's submit waits),
    which call the job's session as ``model.session.JobSession`` declares."""

    @property
    def fqid(self) -> str: ...

    def submit(self, keep_going: bool = False) -> object: ...

    def kill(self) -> None: ...

    def resubmit(self, force: bool = False, include_killed: bool = False) -> None: ...

    def remove(self, force: bool = False) -> None: ...

    def copy(self) -> object: ...


class JobSlice:
    def __init__(self, jobs: Iterable[Any], what: str = "jobs") -> None:
        self._jobs = list(jobs)
        self._what = what

    # -- a list of jobs --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._jobs)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return JobSlice(self._jobs[index], self._what)
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            return self(index)  # as on jobs and in Ganga: s[3] is the job with id 3
        if isinstance(index, str):
            named = [job for job in self._jobs if job.name == index]
            if len(named) == 1:
                return named[0]
            raise JobNotFound(index, f"{len(named)} jobs of this slice have that name")
        try:
            return self._jobs[index]  # s[-1]: the last job of the slice
        except (IndexError, TypeError):
            raise JobNotFound(index, f"this slice holds {self.ids()}") from None

    def __call__(self, job_id: int) -> Any:
        for job in self._jobs:
            if job.id == job_id:
                return job
        raise JobNotFound(job_id, f"this slice holds {self.ids()}")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JobSlice):
            return self._jobs == other._jobs
        if isinstance(other, list):
            return self._jobs == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def ids(self) -> list[int]:
        return [job.id for job in self._jobs]

    def select(self, minid: int | None = None, maxid: int | None = None, **criteria: Any) -> JobSlice:
        chosen = [j for j in self._jobs if (minid is None or j.id >= minid)
                  and (maxid is None or j.id <= maxid)]
        return JobSlice(select_jobs(chosen, **criteria), self._what)

    # -- the verbs, job by job -------------------------------------------------------
    def _each(self, verb: str, keep_going: bool, call: Callable[[SliceMember], R]) -> list[R]:
        if keep_going not in (True, False):  # jobs.remove(10) is not "remove job 10"
            raise InvalidValue(f"{verb}()", "keep_going", keep_going,
                               "True or False (a slice's verbs act on every job of it: "
                               f"to {verb} one job, jobs(id).{verb}())")
        results: list[R] = []
        failures: list[str] = []
        members: list[SliceMember] = list(self._jobs)
        for job in members:
            try:
                results.append(call(job))
            except GangaLikeError as exc:
                if not keep_going:
                    raise
                failures.append(f"{job.fqid}: {exc}")
        if failures:
            raise SliceErrors(f"{verb}() refused for {len(failures)} of {len(self._jobs)} "
                              f"{self._what}: " + " | ".join(failures), failures=failures)
        return results

    def submit(self, keep_going: bool = False) -> JobSlice:
        self._each("submit", keep_going, lambda job: job.submit())
        return self

    def kill(self, keep_going: bool = False) -> None:
        self._each("kill", keep_going, lambda job: job.kill())

    def resubmit(self, keep_going: bool = False, force: bool = False) -> None:
        self._each("resubmit", keep_going, lambda job: job.resubmit(force=force))

    def remove(self, keep_going: bool = False, force: bool = False) -> None:
        self._each("remove", keep_going, lambda job: job.remove(force=force))

    def copy(self, keep_going: bool = False) -> JobSlice:
        return JobSlice(self._each("copy", keep_going, lambda job: job.copy()), self._what)

    # -- shown as one table (of subjobs: their columns) ------------------------------------
    def __repr__(self) -> str:
        return jobs_listing(self._jobs, self._what)

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        printer.text(jobs_listing(self._jobs, self._what, colour=use_colour()))
