"""The verb table as the wire carries it, shared by the client and the service.

The job verbs are declared once, in ``model.session.JobSession``; the service's own
(hello, status, web, stop) are declared here. From the table: a request's arguments (a job
goes as its fqid, a list of jobs as their fqids; an argument whose None means "the
caller's own" is filled in by the caller; local arguments stay with it), the service's
answer in the verb's result shape, and the client's return value from that answer.

Read your writes: every request carries the last transaction the client has seen;
the service waits until its view has it before it acts, and the client waits for the
answer's transaction before it returns (ZEO's ``sync()`` is a no-op, and
invalidations travel on another socket than the answer). Both ends use
:func:`seen_tid` and :func:`catch_up`.
"""

from __future__ import annotations

import enum
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, cast

from ZODB import DB
from ZODB.utils import p64, u64

from ..model.session import JOB_VERBS, Lock, Param, Result, Verb
from ..status import Status

SERVICE_VERBS = (
    Verb("hello", (), Lock.NONE, "service.verbs:Verbs.hello", Result.INFO,
         doc="The service's information (a client's first request: waits until it is ready)."),
    Verb("status", (), Lock.NONE, "service.verbs:Verbs.status", Result.INFO, any_time=True,
         doc="The service's information, answered even while it starts or stops."),
    Verb("web", (Param("listen", "str", ""),), Lock.NONE, "service.verbs:Verbs.web", Result.INFO,
         doc="The web view's address with its token (started now if it is not yet); "
             "listen: HOST:PORT instead of loopback, at its first start."),
    Verb("pack", (), Lock.NONE, "service.verbs:Verbs.pack", Result.INFO,
         doc="Pack the database now (jobs.fs: the current state, plus the history the "
             "pack policy keeps); what it did, with the sizes before and after."),
    Verb("stop", (), Lock.NONE, "service.verbs:Verbs.stop", Result.TEXT, any_time=True,
         doc="Stop the service ('stopping'); a new one starts on the next use."),
)

VERBS: dict[str, Verb] = {**JOB_VERBS, **{v.name: v for v in SERVICE_VERBS}}

SUBJECTS = {"job": "fqid", "jobs": "fqids"}  # how the wire names a verb's jobs
CATCH_UP = 10.0  # the longest either end waits for a transaction to reach its view


# -- the client's side ---------------------------------------------------------------------
def request_args(verb: Verb, args: Mapping[str, object]) -> dict[str, object]:
    """What the wire carries for ``args`` (a session's arguments, defaults applied here)."""
    fillers = dict(verb.from_caller)
    wire: dict[str, object] = {}
    for param in verb.params:
        if param.name in verb.local:
            continue
        value = args.get(param.name, param.default)
        if param.name == "job":
            wire["fqid"] = _fqid(value)
        elif param.name == "jobs":
            wire["fqids"] = [_fqid(job) for job in _iterable(value)]
        elif value is None and param.name in fillers:
            wire[param.name] = fillers[param.name]()
        else:
            wire[param.name] = value.value if isinstance(value, enum.Enum) else value
    return wire


def returned(verb: Verb, answer: object, args: Mapping[str, object]) -> object:
    """What a session returns for the service's ``answer`` to ``verb``."""
    if verb.result in (Result.NOTHING, Result.REMOVED):
        return None
    if verb.result is Result.JOB:
        return args["job"]
    if verb.result is Result.STATUSES:
        return [Status(s) for s in _iterable(answer)]
    return answer


# -- the service's side ------------------------------------------------------------------
def wire_signature(verb: Verb) -> inspect.Signature:
    """The arguments a request for ``verb`` may carry, as a signature to bind them to."""
    params = [inspect.Parameter(SUBJECTS.get(p.name, p.name), inspect.Parameter.KEYWORD_ONLY,
                                default=p.default)
              for p in verb.params if p.name not in verb.local]
    return inspect.Signature(params)


def call_args(verb: Verb, wire: Mapping[str, object],
              job_named: Callable[[str], object]) -> dict[str, object]:
    """A session's arguments for the request's ``wire`` arguments: jobs are read with
    ``job_named`` (through the connection the verb runs on). A request that does not
    fit the verb raises TypeError, as a call would."""
    bound = wire_signature(verb).bind(**wire)
    bound.apply_defaults()
    args: dict[str, object] = {}
    for param in verb.params:
        if param.name in verb.local:
            continue
        value = bound.arguments[SUBJECTS.get(param.name, param.name)]
        if param.name == "job":
            args["job"] = job_named(str(value))
        elif param.name == "jobs":
            args["jobs"] = [job_named(str(fqid)) for fqid in _iterable(value)]
        else:
            args[param.name] = value
    return args


def answer(verb: Verb, value: object, args: Mapping[str, object]) -> object:
    """What the service answers: ``value`` (a session's result) in the verb's shape on
    the wire. A job's status is read as it is now: refresh first."""
    if verb.result.reports_job_status:
        return _status_value(args["job"])
    if verb.result is Result.REMOVED:
        return "removed"
    if verb.result is Result.STATUSES:
        return [Status(s).value for s in _iterable(value)]
    return value


# -- read your writes ------------------------------------------------------------------------
def seen_tid(db: DB) -> str:
    """The last transaction ``db`` (a ZODB DB) has seen, for the wire."""
    return f"{u64(db.lastTransaction()):016x}"


def catch_up(db: DB, tid: str, timeout: float = CATCH_UP) -> None:
    """Wait (at most ``timeout`` s) until ``db``'s storage has seen ``tid``."""
    if not tid:
        return
    wanted = p64(int(tid, 16))
    storage = db.storage
    deadline = time.monotonic() + timeout
    while storage.lastTransaction() < wanted and time.monotonic() < deadline:
        time.sleep(0.0005)


class _Job(Protocol):
    """What the wire reads of a verb's job (``model.job.Job``)."""

    @property
    def fqid(self) -> str: ...

    @property
    def status(self) -> Status: ...


def _fqid(job: object) -> str:
    return cast(_Job, job).fqid


def _status_value(job: object) -> str:
    return cast(_Job, job).status.value


def _iterable(value: object) -> Iterable[object]:
    assert isinstance(value, Iterable), value
    return value


__all__ = ["CATCH_UP", "SERVICE_VERBS", "VERBS", "answer", "call_args", "catch_up",
           "request_args", "returned", "seen_tid", "wire_signature"]
