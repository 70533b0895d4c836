"""Job statuses, the one transition table, and the master rule.

Pure: no I/O, no ZODB, no Ray. Everything that changes a status in the program
calls :func:`check_transition` (through ``ganga_like.model.lifecycle.set_status``),
so the table below is the single source of truth. The documentation's status
table is generated from it (``ganga_like.status.table_markdown``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from .errors import InvalidTransition, UnknownStatus


class Status(str, enum.Enum):
    """The status of a job or subjob, as Ganga users know them.

    A ``str`` enum, so ``j.status == 'completed'`` works as in Ganga scripts.
    """

    NEW = "new"
    """Created and editable; nothing has been sent anywhere."""
    SUBMITTING = "submitting"
    """Being handed to a backend. A crash here is reconciled on the next start."""
    SUBMITTED = "submitted"
    """Accepted by the backend, not yet started (queued: see the backend detail)."""
    RUNNING = "running"
    """Started by the backend and holding a resource."""
    COMPLETING = "completing"
    """Finished; outputs are being collected and postprocessors run."""
    COMPLETED = "completed"
    """Finished successfully; the backend confirmed its resources are free."""
    FAILED = "failed"
    """Finished unsuccessfully (or was failed by hand); resources are free."""
    KILLED = "killed"
    """Stopped on request; the backend confirmed its resources are free."""
    COMPLETED_FROZEN = "completed_frozen"
    """A completed job taken out of auto-resubmission and of the master rule."""
    FAILED_FROZEN = "failed_frozen"
    """A failed or killed job taken out of auto-resubmission and of the master rule."""
    INCOMPLETE = "incomplete"
    """Transient: a job whose stored record could not be read whole."""
    UNKNOWN = "unknown"
    """Transient: the backend lost track of it; resolved by recovery or removal."""
    REMOVED = "removed"
    """Transient: the job is being deleted from the repository."""
    TEMPLATE = "template"
    """A job template, kept in the ``templates`` registry; never submitted itself."""

    def __str__(self) -> str:  # print(j.status) shows 'completed', as in Ganga
        return self.value

    def __repr__(self) -> str:  # j.status at the prompt shows 'completed' too
        return repr(self.value)

    @classmethod
    def parse(cls, value: object) -> Status:
        """The Status for ``value`` (a Status or its name), or a clear UnknownStatus."""
        if isinstance(value, Status):
            return value
        # A dict lookup: Enum's own call costs ten times more, and the monitor parses
        # a few statuses per subjob event.
        member = cls._value2member_map_.get(value) if isinstance(value, str) else None
        if member is not None:
            return member  # type: ignore[return-value]
        try:
            return cls(str(value).lower())
        except ValueError:
            raise UnknownStatus(value, [s.value for s in cls]) from None


S = Status

ACTIVE: frozenset[Status] = frozenset({S.SUBMITTING, S.SUBMITTED, S.RUNNING, S.COMPLETING})
"""Work that may hold (or is about to hold) a backend resource."""
FINAL: frozenset[Status] = frozenset(
    {S.COMPLETED, S.FAILED, S.KILLED, S.COMPLETED_FROZEN, S.FAILED_FROZEN}
)
"""Finished work; in strict mode the backend has confirmed its resources are free."""
FROZEN: frozenset[Status] = frozenset({S.COMPLETED_FROZEN, S.FAILED_FROZEN})
"""Final and left alone: no auto-resubmission, not counted by the master rule."""
TRANSIENT: frozenset[Status] = frozenset({S.INCOMPLETE, S.UNKNOWN, S.REMOVED})
# The statuses a master is given, not derived from its subjobs: its removal (unknown
# first when removed while active). Stored on the master, they are its status.
MASTER_REMOVAL: tuple[Status, ...] = (S.UNKNOWN, S.REMOVED)
"""Never a resting status of a stored job: something is still to be done about it."""
RESUBMITTABLE: frozenset[Status] = frozenset(
    {S.RUNNING, S.KILLED, S.COMPLETED, S.COMPLETING, S.FAILED, S.SUBMITTED}
)
"""Statuses from which ``resubmit()`` may start (running ones only with force)."""


class RayState(str, enum.Enum):
    """The service's Ray, as the service reports it (``ray`` in its status): a client that
    asks for a verb needing the backends while Ray starts says it waits (issue 22)."""

    STARTING = "starting"
    UP = "up"
    FAILED = "failed"  # why: ``ray_error``; reads and edits still work
    STOPPED = "stopped"


class Source(str, enum.Enum):
    """Who changed a status, as a history entry records it (stored as the value: a plain
    string, so records stay readable without this class)."""

    USER = "user"
    """A verb a person (or a script) sent: submit, kill, resubmit, force_status, ..."""
    BACKEND = "backend"
    """An event a backend reported, applied by the monitor."""
    MONITOR = "monitor"
    """The monitor's own conclusion: outputs collected, auto-resubmission."""
    RECOVERY = "recovery"
    """A new session adopting, or rolling back, what an earlier one left."""
    DERIVED = "derived"
    """A master's status, moved by the master rule after one of its subjobs moved."""
    SYSTEM = "system"
    """Anything else (set_status's default; also any source an old record spelled
    otherwise)."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object) -> Source:
        """The Source for ``value`` (a Source or its stored string); an unknown string, as
        an old record may hold, is SYSTEM."""
        if isinstance(value, Source):
            return value
        member = cls._value2member_map_.get(value) if isinstance(value, str) else None
        return member if member is not None else cls.SYSTEM  # type: ignore[return-value]


class Cause(NamedTuple):
    """Why a status changed: the verb, monitor batch, recovery, ... that did it.

    ``kind`` is the verb's name ("kill", "submit", ...), "monitor batch", "recovery",
    "auto-resubmit" or "derived" (a master moved by its subjob's change); ``id`` is a short
    number unique within the repository (``repository.causes``; records written before
    those hold a longer id, and read the same); ``after`` is the cause this one followed
    from: the batch that saw the failure an auto-resubmit answers, the subjob change's
    cause for a derived master move; ``origin`` is who asked for a verb ("the ganga-like
    command (kill), pid 4242": ``channel.origin``). Stored as a plain tuple (``stored``)."""

    kind: str
    id: str
    after: Cause | None = None
    origin: str = ""

    def stored(self) -> tuple:
        """As a history entry keeps it: nested plain tuples, no class reference."""
        return (self.kind, self.id, None if self.after is None else self.after.stored(),
                self.origin)

    @classmethod
    def load(cls, value: object) -> Cause | None:
        """A stored cause back (None for none, or one this version cannot read)."""
        if not isinstance(value, tuple) or len(value) < 2:
            return None
        after = cls.load(value[2]) if len(value) > 2 else None
        origin = str(value[3]) if len(value) > 3 and value[3] else ""
        return cls(str(value[0]), str(value[1]), after, origin)

    def __str__(self) -> str:
        """``kill #41 from ganga-like kill, pid 4242``; ``auto-resubmit #43
        after monitor batch #40``; a master's ``derived from monitor batch #40``."""
        if self.kind == "derived" and self.after is not None:
            return f"derived from {self.after}"
        text = f"{self.kind} #{self.id}" if self.id else self.kind
        if self.origin:
            text += f" from {self.origin}"
        if self.after is not None:
            text += f" after {self.after.kind} #{self.after.id}"
        return text


class HistoryEntry(NamedTuple):
    """One status change as a job's ``history`` records it. Stored as a plain tuple
    ``(when, from, to, note, source, cause)`` (persistence: old records stay readable;
    those written before causes are 5-tuples); read it through :func:`history_entries`."""

    when: float
    src: str
    dst: str
    note: str
    source: Source  # who changed it
    cause: Cause | None = None  # which verb, batch, recovery, ...; None in old records


def history_entries(history: Iterable[tuple]) -> list[HistoryEntry]:
    """A job's ``history`` (tuples, oldest first) as named entries: the source as a
    :class:`Source`, the cause as a :class:`Cause` (None where the record has none)."""
    return [HistoryEntry(entry[0], entry[1], entry[2], entry[3], Source.parse(entry[4]),
                         Cause.load(entry[5]) if len(entry) > 5 else None)
            for entry in history]


class Edge(NamedTuple):
    source: Status
    target: Status
    trigger: str


def _edges() -> dict[tuple[Status, Status], str]:
    table: dict[tuple[Status, Status], str] = {}

    def add(source: Status, target: Status, trigger: str) -> None:
        table[(source, target)] = trigger

    add(S.NEW, S.SUBMITTING, "submit()")
    add(S.NEW, S.REMOVED, "remove()")

    add(S.SUBMITTING, S.NEW, "submission failed: rolled back, editable again")
    add(S.SUBMITTING, S.SUBMITTED, "the backend accepted it")
    add(S.SUBMITTING, S.UNKNOWN, "the backend's answer was lost during submission")
    add(S.SUBMITTING, S.FAILED, "the backend refused it for good")
    add(S.SUBMITTING, S.KILLED, "kill() during submission, confirmed by the backend")

    add(S.SUBMITTED, S.RUNNING, "the backend started it")
    add(S.SUBMITTED, S.KILLED, "kill(), confirmed by the backend")
    add(S.SUBMITTED, S.UNKNOWN, "the backend lost track of it")
    add(S.SUBMITTED, S.FAILED, "the backend reported a failure, or force_status('failed')")
    add(S.SUBMITTED, S.COMPLETING, "it finished before it was seen running")
    add(S.SUBMITTED, S.COMPLETED, "it finished before it was seen running; nothing to collect")
    add(S.SUBMITTED, S.SUBMITTING, "resubmit()")

    add(S.RUNNING, S.COMPLETING, "it finished; collecting outputs")
    add(S.RUNNING, S.COMPLETED, "it finished; nothing to collect")
    add(S.RUNNING, S.FAILED, "it exited with an error, or force_status('failed')")
    add(S.RUNNING, S.KILLED, "kill(), confirmed by the backend")
    add(S.RUNNING, S.UNKNOWN, "the backend lost track of it")
    add(S.RUNNING, S.SUBMITTING, "resubmit(force=True), after a confirmed kill")
    add(S.RUNNING, S.SUBMITTED, "the backend requeued it")

    add(S.COMPLETING, S.COMPLETED, "outputs collected, postprocessors passed")
    add(S.COMPLETING, S.FAILED, "collecting outputs or a postprocessor failed")
    add(S.COMPLETING, S.UNKNOWN, "the outputs were lost")
    add(S.COMPLETING, S.SUBMITTING, "resubmit()")
    add(S.COMPLETING, S.SUBMITTED, "the backend requeued it")

    add(S.KILLED, S.REMOVED, "remove()")
    add(S.KILLED, S.FAILED, "force_status('failed')")
    add(S.KILLED, S.SUBMITTING, "resubmit()")
    add(S.KILLED, S.SUBMITTED, "the backend restarted it")
    add(S.KILLED, S.FAILED_FROZEN, "freeze()")

    add(S.FAILED, S.REMOVED, "remove()")
    add(S.FAILED, S.SUBMITTING, "resubmit()")
    add(S.FAILED, S.COMPLETED, "force_status('completed')")
    add(S.FAILED, S.SUBMITTED, "the backend restarted it")
    add(S.FAILED, S.FAILED_FROZEN, "freeze()")

    add(S.COMPLETED, S.REMOVED, "remove()")
    add(S.COMPLETED, S.FAILED, "force_status('failed'), or a checker rejected it")
    add(S.COMPLETED, S.SUBMITTING, "resubmit()")
    add(S.COMPLETED, S.SUBMITTED, "the backend restarted it")
    add(S.COMPLETED, S.COMPLETED_FROZEN, "freeze()")

    add(S.COMPLETED_FROZEN, S.COMPLETED, "unfreeze()")
    add(S.FAILED_FROZEN, S.FAILED, "unfreeze()")

    add(S.INCOMPLETE, S.REMOVED, "remove()")
    add(S.UNKNOWN, S.REMOVED, "remove()")
    add(S.TEMPLATE, S.REMOVED, "remove()")
    return table


TRANSITIONS: Mapping[tuple[Status, Status], str] = _edges()
"""Every legal ``(from, to)`` edge, with the trigger that takes it."""

_TARGETS: dict[Status, frozenset[Status]] = {
    status: frozenset(t for (s, t) in TRANSITIONS if s is status) for status in Status
}


def allowed_targets(source: Status | str) -> frozenset[Status]:
    """The statuses that ``source`` may move to."""
    return _TARGETS[Status.parse(source)]


def is_allowed(source: Status | str, target: Status | str) -> bool:
    return (Status.parse(source), Status.parse(target)) in TRANSITIONS


def edges() -> list[Edge]:
    """The table as a list of edges, in declaration order."""
    return [Edge(s, t, trigger) for (s, t), trigger in TRANSITIONS.items()]


def check_transition(
    job_id: str,
    source: Status | str,
    target: Status | str,
    recent_history: Iterable[tuple] | Callable[[], Iterable[tuple]] = (),
) -> str:
    """Return the trigger of the edge ``source -> target``, or raise InvalidTransition
    (naming ``recent_history``: given as a function, it is made only then, since every
    status change is checked here and reading entries costs more than the check)."""
    src, dst = Status.parse(source), Status.parse(target)
    try:
        return TRANSITIONS[(src, dst)]
    except KeyError:
        recent = recent_history() if callable(recent_history) else recent_history
        raise InvalidTransition(
            job_id, src.value, dst.value, [t.value for t in _TARGETS[src]], tuple(recent)
        ) from None


MASTER_PRIORITY: tuple[Status, ...] = (
    S.SUBMITTING,
    S.RUNNING,
    S.SUBMITTED,
    S.COMPLETING,
    S.UNKNOWN,
    S.FAILED,
    S.KILLED,
    S.NEW,
    S.COMPLETED,
)
"""The master rule: the master's status is the first of these that any subjob has.

Ganga's rule with ``running`` before ``submitted``, plus ``new`` (which Ganga ignores:
its bug #862) and ``unknown`` (a subjob we lost track of may still hold a resource, so
it ranks with the active ones). Ganga ranks ``submitted`` first: a master of 1,000
subjobs run 10 at a time then reads ``submitted`` until the last one starts, while
its work runs; a user reads "running" as "its work is under way", so a master runs
while any subjob runs, and is ``submitted`` when the rest only wait in a queue (a
script waiting for ``'running'`` sees it sooner, never later). Frozen subjobs are
left out; a master whose subjobs are all frozen, or that has no subjobs counted, is
``completed``.
"""


# Every status, as the plain strings a master's counts are keyed by (a str-enum member
# hashes and compares as its value: it is found among them too).
_STATUS_VALUES = frozenset(status.value for status in Status)
_PRIORITY_VALUES = tuple((status.value, status) for status in MASTER_PRIORITY)


def master_status(counts: Mapping[Status | str, int]) -> Status:
    """The master's status derived from per-status subjob counts."""
    if not _STATUS_VALUES.issuperset(counts):  # (one C-level check: it is asked per change)
        for key in counts:
            Status.parse(key)  # an unknown key is an error, not a silently ignored count
    for value, status in _PRIORITY_VALUES:
        if counts.get(value, 0) > 0:
            return status
    return S.COMPLETED


def master_status_of(statuses: Iterable[Status | str]) -> Status:
    """The master rule over a plain list of subjob statuses (for recounts and tests)."""
    counts: dict[Status | str, int] = {}
    for s in statuses:
        st = Status.parse(s)
        counts[st] = counts.get(st, 0) + 1
    return master_status(counts)


def table_markdown() -> str:
    """The transition table as Markdown, for the documentation."""
    lines = ["| from | to | trigger |", "| --- | --- | --- |"]
    for edge in edges():
        lines.append(f"| {edge.source.value} | {edge.target.value} | {edge.trigger} |")
    return "\n".join(lines)
