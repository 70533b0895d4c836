"""The ``jobs`` and ``templates`` registries: BTrees with a Length beside them.

``len()`` of a BTree walks every bucket (0.4 s for 100,000 jobs); the ``Length``
beside it answers at once and merges concurrent changes. Lookups by id load one
bucket path, so opening a repository of any size and reading one job is fast.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ZODB.Connection import Connection as ZODBConnection

from ..errors import InvalidValue, JobNotFound
from ..model.index_fetch import fetch_filed
from ..model.job import Job, JobTemplate
from ..model.jobtime import new_stamps
from ..model.slices import select_indexed, wanted_statuses
from ..model.status_index import StatusIndex, jobs_index
from ..model.table import plural
from ..status import Status
from .root import RepositoryRoot

log = logging.getLogger(__name__)


class RegistryConnection(Protocol):
    """What a registry reads through (``storage.Connection``): the root and the config."""

    @property
    def root(self) -> RepositoryRoot: ...

    @property
    def repository(self) -> Any: ...

    @property
    def conn(self) -> ZODBConnection: ...

    def write(self, work: Callable[[], object], *, note: str = "") -> object: ...


class _Registry:
    _tree_attr = "jobs"
    _count_attr = "job_count"
    _id_kind = "job"
    _what = "jobs"

    def __init__(self, connection: RegistryConnection) -> None:
        self.connection = connection

    @property
    def _tree(self) -> Any:
        return getattr(self.connection.root, self._tree_attr)

    @property
    def _count(self) -> Any:
        return getattr(self.connection.root, self._count_attr)

    def __len__(self) -> int:
        return self._count()

    def __iter__(self) -> Iterator[Job]:
        return iter(self._tree.values())

    def ids(self) -> list[int]:
        return list(self._tree.keys())

    def _known(self) -> str:
        tree = self._tree
        if not len(self):
            return f"there are no {self._what}"
        if len(self) == 1:
            return f"the only one is {tree.minKey()}"
        return f"ids run from {tree.minKey()} to {tree.maxKey()}, {len(self)} {self._what} in all"

    def get(self, wanted: Any) -> Job:
        """A job by id (3), fqid ('3.14') or negative index (-1: the newest)."""
        tree = self._tree
        if isinstance(wanted, bool):
            raise JobNotFound(wanted, self._known())
        if isinstance(wanted, int):
            if wanted < 0:
                newest = self.last(-wanted)
                if len(newest) < -wanted:
                    raise JobNotFound(wanted, self._known())
                return newest[0]
            job = tree.get(wanted)
            if job is None:
                raise JobNotFound(wanted, self._known())
            return job
        if isinstance(wanted, str):
            head, dot, tail = wanted.strip().partition(".")
            try:
                top = int(head)
                sub = int(tail) if dot else None
            except ValueError:
                return self.by_name(wanted)  # Ganga's jobs['name']
            job = self.get(top)
            if sub is None:
                return job
            if job._subjobs is None or sub not in job._subjobs:
                raise JobNotFound(wanted, f"job {top} has {plural(len(job.subjobs), 'subjob')}")
            return job._subjobs[sub]
        raise InvalidValue("jobs", "id", wanted, "a job id like 3, -1 or '3.14'")

    def take_id(self) -> int:
        """A fresh id of this registry's kind, never given out again (inside the caller's
        transaction)."""
        ids = self.connection.root.ids
        assert ids is not None  # every root has one (RepositoryRoot.__init__)
        return ids.take(self._id_kind)

    def add(self, job: Job, new_id: int | None = None) -> int:
        """Register ``job`` under ``new_id`` (from :meth:`take_id`), or a fresh id (inside
        the caller's transaction)."""
        if new_id is None:
            new_id = self.take_id()
        job.id = new_id
        if job.created is None:
            job.created = new_stamps(1)[0]
        self._tree[new_id] = job
        self._count.change(1)
        return new_id

    def discard(self, job: Job) -> None:
        if job.id in self._tree:
            del self._tree[job.id]
            self._count.change(-1)

    @property
    def index(self) -> StatusIndex | None:
        return None  # (templates: all of one status)

    def select(self, minid: int | None = None, maxid: int | None = None,
               **criteria: Any) -> list[Job]:
        """Jobs by id range and ``slices.select_jobs`` criteria (status=, name=, id=, ...);
        with a status, only the jobs the index files under it are read."""
        return select_indexed(self.index, self._tree, None, minid, maxid, self._index_found_wrong,
                              **criteria)

    def _index_found_wrong(self) -> None:
        pass  # (no index)

    def by_name(self, name: str) -> Job:
        """The newest job of that name (Ganga's ``jobs['name']``)."""
        for job in reversed(list(self._tree.values())):
            if job.name == name:
                return job
        raise InvalidValue("jobs", "id", name, "a job id like 3 or '3.14', or the name of a "
                           "job (no job is named so)")

    def last(self, n: int) -> list[Job]:
        """The newest ``n`` jobs, reading only those."""
        tree = self._tree
        if n <= 0 or not len(self):
            return []
        # Ids are dense but may have gaps (removed jobs): widen a range below the
        # largest key until it holds n keys, loading only the buckets it touches.
        top = tree.maxKey()
        span = n
        while True:
            low = max(tree.minKey(), top - span + 1)
            keys = list(tree.keys(low, top))
            if len(keys) >= n or low == tree.minKey():
                return [tree[k] for k in keys[-n:]]
            span *= 4


class JobRegistry(_Registry):
    """The jobs of the repository, by id, and by status (``model.status_index``)."""

    @property
    def index(self) -> StatusIndex | None:
        """The top-level jobs by status (None in a repository written before it, until
        the engine's start builds it: ``repository.index_build``)."""
        return jobs_index(self.connection.conn)

    def add(self, job: Job, new_id: int | None = None) -> int:
        new_id = super().add(job, new_id)
        if not job.workspace:
            job.workspace = os.path.join(
                self.connection.repository.config.workspace, str(new_id)
            )
        index = self.index
        if index is not None:
            # Stored now, not at the commit: a status change later in this transaction
            # finds the index through the job's connection (lifecycle._file), and the
            # index keeps the oid this gives it.
            self.connection.conn.add(job)
            index.add(new_id, job._current_status().value, job._p_oid)
        return new_id

    def discard(self, job: Job) -> None:
        index = self.index
        if index is not None and job.id is not None:
            index.discard(job.id)
        super().discard(job)

    def newest_of(self, status: object, limit: int) -> tuple[list[Job], int] | None:
        """The newest ``limit`` jobs of ``status`` (one or several) and how many there
        are, reading only those jobs; None when the index cannot answer (not built)."""
        index = self.index
        if index is None or not index.readable:
            return None
        wanted = wanted_statuses(status)
        ids = index.ids(wanted, limit=limit, newest_first=True)
        found = [job for job in fetch_filed(index, self._tree, ids[::-1], None)
                 if job is not None]
        return found, index.count(wanted)

    def _index_found_wrong(self) -> None:
        index = self.index
        log.warning("the index of jobs by status disagrees with a job's status; answering "
                    "from a scan; rebuilt at the service's next start")
        if index is not None and not self.connection.repository.read_only:
            self.connection.write(lambda: setattr(index, "complete", False),
                                  note="mark the jobs index for rebuilding")


class TemplateRegistry(_Registry):
    """Job templates, by id."""

    _tree_attr = "templates"
    _count_attr = "template_count"
    _id_kind = "template"
    _what = "templates"

    def add(self, job: Job, new_id: int | None = None) -> int:
        if not isinstance(job, JobTemplate) and job.status is not Status.TEMPLATE:
            raise InvalidValue("templates", "add", job, "a JobTemplate")
        return super().add(job, new_id)
