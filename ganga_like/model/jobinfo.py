"""``j.info``: Ganga's JobInfo (submit counter, uuid, monitoring links), read-only."""

from __future__ import annotations

import uuid as _uuid
from typing import Any

from ..status import history_entries
from .component import FrozenList, ReadOnly, ReadOnlyView

_NAMESPACE = _uuid.UUID("6a1b1c4e-3f1d-4d6e-9c1e-67616e67616c")  # fixed: uuids are stable


def _job_uuid(info: JobInfo) -> str:
    job = info._job
    if job.id is None or not job.workdir:
        return ""
    # Derived, not stored: ids are never reused in a repository, and the workspace path
    # names the repository and the (sub)job, so this is unique and the same every read.
    return str(_uuid.uuid5(_NAMESPACE, "ganga_like:" + job.workdir))


def _submit_counter(info: JobInfo) -> int:
    job = info._job
    if job._counts is None:
        return job.submit_counter
    # A master does not run itself: count its own submissions, the derived entries of its
    # history into 'submitting' (its first submit, each resubmit).
    return sum(1 for entry in history_entries(job.history) if entry.dst == "submitting")


class JobInfo(ReadOnlyView):
    """Ganga's ``j.info``: ``submit_counter`` (how often the job was submitted or
    resubmitted), ``uuid`` (a stable, unique identifier of the job), and
    ``monitoring_links`` / ``monitor`` (always empty here: no external monitoring
    service is fed). Every attribute is read-only."""

    WHAT = "j.info reports what ganga_like recorded; nothing in it is set by hand"

    submit_counter = ReadOnly(_submit_counter,
                              "how many times the job was submitted or resubmitted")
    uuid = ReadOnly(_job_uuid, "a unique identifier, stable for the job's lifetime")
    monitoring_links = ReadOnly(lambda self: FrozenList(),
                                "links to external monitoring: none are kept here")
    monitor = ReadOnly(lambda self: None, "an external monitoring service: none here")

    FIELDS = ("submit_counter", "uuid", "monitoring_links", "monitor")

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        return "JobInfo (" + ", ".join(f"{k} = {v!r}" for k, v in self.values().items()) + ")"

    def __eq__(self, other: object) -> bool:
        # Ganga compares only the submit counter (the uuid is not comparable).
        if not isinstance(other, JobInfo):
            return NotImplemented
        return self.submit_counter == other.submit_counter

    __hash__ = None  # type: ignore[assignment]
