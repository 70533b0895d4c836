"""The persistent objects at the top of the database."""

from __future__ import annotations

import uuid
from typing import Any

from BTrees.IOBTree import IOBTree
from BTrees.Length import Length
from persistent import Persistent

SCHEMA_VERSION = 1
ROOT_KEY = "ganga_like"


class IdAllocator(Persistent):
    """Hands out job ids that are never reused.

    Deliberately not conflict-resolving: two ZEO clients that create a job at the
    same moment conflict here, one retries, and each id is given out once.
    """

    next_job: int = 0
    next_template: int = 0
    next_leak: int = 0
    next_cause: int = 1  # causes are numbered from 1 (repository.causes), in blocks

    def take(self, kind: str) -> int:
        return self.take_block(kind, 1)

    def take_block(self, kind: str, size: int) -> int:
        """The first of ``size`` ids of ``kind`` given out together."""
        attr = "next_" + kind
        value: int = getattr(self, attr)
        setattr(self, attr, value + size)
        return value


class RepositoryRoot(Persistent):
    """Registries of jobs and templates, and the leak ledger."""

    schema_version: int = SCHEMA_VERSION
    repo_uuid: str = ""
    jobs: IOBTree | None = None
    job_count: Length | None = None
    templates: IOBTree | None = None
    template_count: Length | None = None
    leaks: IOBTree | None = None  # the ledger: what forced removals may have left running
    ids: IdAllocator | None = None
    active_ids: Any = None  # IITreeSet of top-level jobs with active work (recovery looks here only)
    # Tombstones of removed jobs, id -> (time, fqid, previous status, note), until the
    # queue log is known to hold their line (ganga_like.engine.log_repair).
    removals: IOBTree | None = None

    def __init__(self) -> None:
        self.repo_uuid = uuid.uuid4().hex[:12]
        self.jobs = IOBTree()
        self.job_count = Length(0)
        self.templates = IOBTree()
        self.template_count = Length(0)
        self.leaks = IOBTree()
        self.ids = IdAllocator()
