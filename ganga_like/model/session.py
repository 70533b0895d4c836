"""What a job asks of its session: every verb, declared once (``JobSession``).

Each verb is one method of :class:`JobSession`: its name, its arguments with their
types and defaults, and (in ``@verb(...)``) whether the service runs it under its write
lock, the operation that carries it out and the shape of its result. Everything else
derives from that declaration:

- both sessions inherit the methods: the body of each hands its arguments to the
  session's one generic call, ``run_verb``. ``engine.core.Engine`` (the facade) starts
  the monitor where the verb says so and runs the operation; ``client.session.
  ClientSession`` sends the verb to the service and reads the answer back;
- ``channel.verbs`` turns the table into what the wire carries (a job as its fqid, the
  caller's environment filled in), and adds the service's own verbs;
- ``service.verbs`` dispatches a request by the table: under the write lock or on a
  connection of its own, and answers in the declared shape.

``Job`` and ``JobSlice`` call their session through ``binding.session_for``, typed as
this protocol, so mypy checks every call against the declaration. The job type is a
parameter (``JobSession[Job]``): ``job.py`` imports this module, so it cannot import
``job.py`` back.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..config import session_option
from ..errors import InvalidValue
from ..status import Status

J = TypeVar("J")  # the job type: model.job.Job
F = TypeVar("F", bound=Callable[..., object])


class Lock(enum.Enum):
    """How the service runs a verb."""

    WRITE = "one at a time, on the service's own connection, under its write lock"
    READ = "at once, on a connection of its own (so a long wait never holds up a kill)"
    NONE = "the service's own: no database, answered by the service itself"


class Result(enum.Enum):
    """The shape of a verb's result: what a session returns, then what the wire carries."""

    NOTHING = ("None", "the job's status after the verb")
    JOB = ("the job", "its status after the verb")
    REMOVED = ("None", "'removed'")
    STATUSES = ("a list of Status, one per job", "their values")
    TEXT = ("a str", "the same str")
    RECORDS = ("a list of dicts", "the same list")
    INFO = ("a dict (the service's own information)", "the same dict")

    def matches(self, value: object, job: object = None) -> bool:
        """Whether a session's ``value`` has this shape (``job``: the verb's job)."""
        if self in (Result.NOTHING, Result.REMOVED):
            return value is None
        if self is Result.JOB:
            return value is job and job is not None
        if self is Result.STATUSES:
            return isinstance(value, list) and all(isinstance(s, Status) for s in value)
        if self is Result.TEXT:
            return isinstance(value, str)
        if self is Result.RECORDS:
            return isinstance(value, list) and all(isinstance(r, dict) for r in value)
        return isinstance(value, dict)

    @property
    def reports_job_status(self) -> bool:
        return self in (Result.NOTHING, Result.JOB)


REQUIRED = inspect.Parameter.empty


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    annotation: str
    default: object = REQUIRED


@dataclasses.dataclass(frozen=True)
class Verb:
    """One verb of the table (see the module's docstring)."""

    name: str
    params: tuple[Param, ...]
    lock: Lock
    operation: str  # "module:qualname" under ganga_like: the function that carries it out
    result: Result
    doc: str = ""
    monitor: bool = False  # the facade starts the monitor (and recovers) first
    stores_job: bool = False  # a job not stored yet is stored first (the wire names it by id)
    long: bool = False  # waits for its jobs to change: asked in slices, read on a
    #                     connection the service refreshes
    local: tuple[str, ...] = ()  # arguments that stay with the caller (never sent)
    from_caller: tuple[tuple[str, Callable[[], object]], ...] = ()  # None: the caller's own
    any_time: bool = False  # the service answers it while it starts or stops, too

    @property
    def reads_only(self) -> bool:
        """It changes nothing (a wait, a peek): a client whose service dies during it
        asks the next service again, where a verb that changes jobs may have gone
        through and is the user's to run again."""
        return self.lock is Lock.READ


_DECLARED: list[Verb] = []


def verb(*, lock: Lock, operation: str, result: Result, monitor: bool = False,
         stores_job: bool = False, long: bool = False, local: tuple[str, ...] = (),
         from_caller: Mapping[str, Callable[[], object]] | None = None) -> Callable[[F], F]:
    """Declare the method below as a verb of the table (the method itself is unchanged)."""

    def declare(method: F) -> F:
        signature = inspect.signature(method)
        params = tuple(Param(p.name, str(p.annotation), p.default)
                       for p in list(signature.parameters.values())[1:])
        _DECLARED.append(Verb(
            name=method.__name__, params=params, lock=lock, operation=operation, result=result,
            doc=inspect.getdoc(method) or "", monitor=monitor, stores_job=stores_job, long=long,
            local=local, from_caller=tuple((from_caller or {}).items())))
        return method

    return declare


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


# What an argument of each declared type must be, and how the refusal names it.
_KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "bool": (lambda v: v in (True, False), "True or False"),
    "bool | None": (lambda v: v is None or v in (True, False), "True, False or None"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "a whole number, 0 or more"),
    "float | None": (lambda v: v is None or (_number(v) and v >= 0),  # type: ignore[operator]
                     "a number of seconds, 0 or more, or None"),
    "str": (lambda v: isinstance(v, str), "a string"),
}


def check_args(verb: Verb, args: Mapping[str, object]) -> None:
    """Refuse, in one line, an argument that is not of its declared kind
    (``j.wait(timeout='soon')``), before anything is sent or done."""
    for param in verb.params:
        kind = _KINDS.get(param.annotation)
        if kind is not None and param.name in args and not kind[0](args[param.name]):
            raise InvalidValue(f"{verb.name}()", param.name, args[param.name], kind[1])


def caller_resubmits_only_failed() -> bool:
    """The calling process's Ganga option ``resubmitOnlyFailedSubjobs`` (default True)."""
    return session_option("Configuration", "resubmitOnlyFailedSubjobs")


def caller_environment() -> dict[str, str]:
    """The calling process's environment (what ``submit`` gives payloads by default)."""
    return dict(os.environ)


@runtime_checkable
class JobSession(Protocol[J]):
    """A session as a job sees it. ``Engine`` and ``ClientSession`` implement it (they
    inherit the verbs below and provide ``run_verb``); ``binding.bind`` checks it."""

    # -- what the model needs besides the verbs -----------------------------------------
    def register(self, job: J) -> J:
        """Store a new job (or template) under a fresh id."""
        ...

    def write(self, work: Callable[[], object], note: str = "") -> object:
        """Run ``work`` in a transaction of this session's connection and commit it."""
        ...

    def refresh_for_read(self, jar: object) -> None:
        """Let a read through this session's connection see other commits (throttled)."""
        ...

    def run_verb(self, name: str, /, **args: object) -> Any:
        """Carry out one verb of the table with its arguments: the one generic call."""
        ...

    # -- the verbs -----------------------------------------------------------------------
    @verb(lock=Lock.WRITE, operation="engine.operations.submit:submit", result=Result.JOB,
          monitor=True, stores_job=True, from_caller={"environment": caller_environment})
    def submit(self, job: J, keep_going: bool = False,
               environment: Mapping[str, str] | None = None) -> J:
        """Submit a new job: split it, hand its subjobs to the backend. Its payloads get
        ``environment`` (None: the calling process's)."""
        return self.run_verb("submit", job=job, keep_going=keep_going, environment=environment)

    @verb(lock=Lock.WRITE, operation="engine.operations.bex:submit_bex", result=Result.TEXT,
          monitor=True, from_caller={"environment": caller_environment})
    def submit_bex(self, text: str, hosts: list[str], source: str = "<job file>",
                   environment: Mapping[str, str] | None = None) -> str:
        """Queue a BEX job file (headers ID, Subject, Prep; a blank line; the body) on these
        hosts: one master, one subjob per host. Its id; refused in one line, with nothing
        stored, for a malformed file, an ID the queue has, or a host the Hosts backend
        does not know. ``source`` names the file in errors."""
        return self.run_verb("submit_bex", text=text, hosts=hosts, source=source,
                             environment=environment)

    @verb(lock=Lock.WRITE, operation="engine.operations.kill:kill", result=Result.NOTHING,
          monitor=True)
    def kill(self, job: J) -> None:
        """Kill the job or subjob; in strict mode, only once the backend confirms."""
        return self.run_verb("kill", job=job)

    @verb(lock=Lock.WRITE, operation="engine.operations.resubmit:resubmit",
          result=Result.NOTHING, monitor=True,
          from_caller={"only_failed": caller_resubmits_only_failed})
    def resubmit(self, job: J, force: bool = False, include_killed: bool = False,
                 only_failed: bool | None = None) -> None:
        """Resubmit a master's failed subjobs (killed ones too with include_killed; every
        finished one if not ``only_failed``: None, the caller's Ganga option
        resubmitOnlyFailedSubjobs), or this one."""
        return self.run_verb("resubmit", job=job, force=force, include_killed=include_killed,
                             only_failed=only_failed)

    @verb(lock=Lock.WRITE, operation="engine.operations.remove:remove", result=Result.REMOVED,
          monitor=True)
    def remove(self, job: J, force: bool = False) -> None:
        """Kill, then remove from the repository (force: even if the kill is unconfirmed)."""
        return self.run_verb("remove", job=job, force=force)

    @verb(lock=Lock.WRITE, operation="engine.operations.forcing:force_status",
          result=Result.NOTHING, monitor=True)
    def force_status(self, job: J, status: str, force: bool = False) -> None:
        """Force 'failed' or 'completed' (a running job is killed first)."""
        return self.run_verb("force_status", job=job, status=status, force=force)

    @verb(lock=Lock.WRITE, operation="engine.operations.forcing:freeze", result=Result.NOTHING)
    def freeze(self, job: J) -> None:
        """Keep a final job as it is: its subjobs are left out of the master's status."""
        return self.run_verb("freeze", job=job)

    @verb(lock=Lock.WRITE, operation="engine.operations.forcing:unfreeze",
          result=Result.NOTHING)
    def unfreeze(self, job: J) -> None:
        """Undo freeze()."""
        return self.run_verb("unfreeze", job=job)

    @verb(lock=Lock.WRITE, operation="engine.operations.unmonitor:unmonitor",
          result=Result.NOTHING)
    def unmonitor(self, job: J) -> None:
        """Relaxed mode only: stop following the job (its handles go to the leak ledger)."""
        return self.run_verb("unmonitor", job=job)

    @verb(lock=Lock.WRITE, operation="engine.audit:audit_leaks", result=Result.RECORDS)
    def leaks(self, reap: bool = False) -> list[dict[str, object]]:
        """Work that still holds resources although its job is final or removed (reap: end it)."""
        return self.run_verb("leaks", reap=reap)

    @verb(lock=Lock.READ, operation="engine.operations.hosts:list_hosts", result=Result.RECORDS)
    def hosts(self, name: str = "") -> list[dict[str, object]]:
        """The Hosts backend's hosts, each once (or the one named): name, labels, status,
        protection, dirty flag, the subjob it holds, its last check and its result."""
        return self.run_verb("hosts", name=name)

    @verb(lock=Lock.READ, operation="engine.operations.output:peek", result=Result.TEXT)
    def peek(self, job: J, file: str = "stdout", lines: int = 20) -> str:
        """The last lines of one of the job's output files."""
        return self.run_verb("peek", job=job, file=file, lines=lines)

    @verb(lock=Lock.READ, operation="engine.core:Engine.wait_until_final", result=Result.STATUSES,
          long=True, local=("poll",))
    def wait(self, jobs: Iterable[J], timeout: float | None = None,
             poll: float | None = None) -> list[Status]:
        """Block until every job is final and its postprocessing done; their statuses.
        ``poll``: how often an in-process wait looks again (the service's own choice)."""
        return self.run_verb("wait", jobs=jobs, timeout=timeout, poll=poll)


JOB_VERBS: dict[str, Verb] = {v.name: v for v in _DECLARED}

__all__ = ["JOB_VERBS", "JobSession", "Lock", "Param", "Result", "Verb", "caller_environment",
           "verb"]
