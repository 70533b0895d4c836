"""What a backend's event does to a job: the event rules, as data.

Pure: no I/O, no ZODB, no Ray. The monitor (``ganga_like.engine.monitor``) looks each
event up here and applies the rule it gets; it decides nothing itself. Beside the
status table (``ganga_like.status``): every move a rule makes goes through the one
status function, which checks it against that table, and ``tests/unit/test_event_rules.py``
checks, for every situation, that the moves are edges of it. The documentation's
event table is generated from :data:`ROWS` (``ganga_like.event_rules.table_markdown``).

A *situation* is what the decision depends on: the event's kind, the job's status,
the class of the event's exit code (zero, nonzero, none), whether the event's handle
says the backend could not start the work at all (``Handle.error``), whether the job
(its top job) is monitored (relaxed mode's ``unmonitor()``), and whether the event is
news of the job's current attempt (a handle naming an earlier attempt is a run that
was killed and replaced). Each situation matches exactly one row of :data:`ROWS`;
:func:`rule_for` returns that row's rule, with ``touch`` set for the events that end
a run (finished, lost, killed) unless the row skips the event.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .backends import base
from .backends.runtime.runs import DONE_DETAIL, KILLED_DETAIL, LOST_DETAIL, RUNNING_DETAIL
from .status import ACTIVE, Status

S = Status


class ExitClass(str, enum.Enum):
    """The class of an event's exit code: only ``finished`` events carry one."""

    ZERO = "zero"
    NONZERO = "nonzero"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


def exit_class(code: int | None) -> ExitClass:
    if code is None:
        return ExitClass.NONE
    return ExitClass.ZERO if code == 0 else ExitClass.NONZERO


class Situation(NamedTuple):
    """What the rule for an event depends on (see the module doc)."""

    kind: str  # one of backends.base.EVENT_KINDS
    status: Status  # the job's status when the event is applied
    exit: ExitClass  # of the event's exit code
    handle_error: bool  # the event's handle says the work could not be started at all
    monitored: bool  # the job's top job is in the monitoring loop
    current: bool  # the event names no handle, or one of the job's current attempt


class Rule(NamedTuple):
    """What the monitor does to the job, in this order:

    record the event's handle (``record_handle``, only a handle naming the run: see
    :func:`records`);
    set the backend detail (the event's own when ``event_detail`` and it names one,
    else ``detail``; ``""`` leaves it as it is) and the backend note (the event's note
    when ``backend_note``: why it waits, or where it is, in the backend's words; a rule
    that sets a detail without it clears the note, which spoke of the detail before);
    record the exit code; move the job
    through ``moves`` (each through ``set_status``, stamped with the event's time
    unless ``at_event_time`` is False), the last with the note (the event's own when
    ``event_note`` and it has one, else ``note``, where ``{exit_code}`` and ``{error}``
    are filled in; the tail of the job's stderr added when ``stderr_tail``); then
    collect its outputs and run its postprocessors (``collect``), resubmit it
    automatically if its master asks (``auto_resubmit``), and note its top job's
    master postprocessing as possibly due (``touch``).
    """

    moves: tuple[Status, ...] = ()
    note: str = ""
    event_note: bool = False
    stderr_tail: bool = False
    detail: str = ""
    event_detail: bool = False
    backend_note: bool = False
    record_handle: bool = False
    record_exit_code: bool = False
    collect: bool = False
    auto_resubmit: bool = False
    touch: bool = False
    at_event_time: bool = True
    skip: bool = False  # the event is not applied at all (the job is not watched for it)
    why: str = ""  # for the documentation

    @property
    def ignored(self) -> bool:
        """Nothing changes on the job (``touch`` may still note its top job)."""
        return not (self.moves or self.detail or self.event_detail or self.record_handle
                    or self.record_exit_code or self.collect or self.auto_resubmit)

    def detail_for(self, event_detail: str) -> str:
        """The backend detail to set ("": leave it)."""
        return (self.event_detail and event_detail) or self.detail

    def backend_note_for(self, event_note: str, event_detail: str, current: str) -> str:
        """The job's backend note after the event (``current``: the note it has)."""
        if self.backend_note:
            return event_note
        return "" if self.detail_for(event_detail) else current

    def note_for(self, event_note: str, exit_code: int | None = None, error: str = "") -> str:
        """The note of the last move (without the stderr tail)."""
        if self.event_note and event_note:
            return event_note
        return self.note.format(exit_code=exit_code, error=error)


ANY = object()  # a Row field that matches every value


class Row(NamedTuple):
    """A rule and the situations it applies to (each field: the values it matches)."""

    kinds: frozenset[str]
    statuses: frozenset[Status]
    exits: frozenset[ExitClass]
    handle_error: frozenset[bool]
    monitored: frozenset[bool]
    current: frozenset[bool]
    rule: Rule

    def matches(self, s: Situation) -> bool:
        return (s.kind in self.kinds and s.status in self.statuses and s.exit in self.exits
                and s.handle_error in self.handle_error and s.monitored in self.monitored
                and s.current in self.current)


KINDS: frozenset[str] = frozenset(base.EVENT_KINDS)
ENDING_KINDS: frozenset[str] = frozenset({base.FINISHED, base.LOST, base.KILLED})
"""Events that end a run: each one (not skipped) notes the job's top job, whose
master-level postprocessors may now be due."""
STATUSES: frozenset[Status] = frozenset(Status)
NOT_ACTIVE: frozenset[Status] = STATUSES - ACTIVE
EXITS: frozenset[ExitClass] = frozenset(ExitClass)
BOTH: frozenset[bool] = frozenset({True, False})

REFUSED: Mapping[Status, tuple[Status, str]] = {
    S.SUBMITTING: (S.NEW, "submission failed: {error}"),
    S.SUBMITTED: (S.FAILED, "the backend could not start it: {error}"),
}
"""A handle with ``error`` (the backend could not start the work at all), by the
job's status: the move and its note. A submission failure rolls back to ``new``
(editable, submittable again), never a run failure; accepted and queued, then found
impossible to start, it fails (``submitted -> new`` is not an edge) and is not
resubmitted automatically. The monitor applies it to the answers of ``submit()``
too; any other status: nothing (the job moved on)."""


def _row(kinds: Iterable[str] | object, statuses: Iterable[Status] | object, rule: Rule, *,
         exits: Iterable[ExitClass] | object = ANY, handle_error: bool | object = False,
         monitored: bool | object = True, current: bool | object = True) -> Row:
    def values(given: object, every: frozenset) -> frozenset:
        if given is ANY:
            return every
        if isinstance(given, bool):
            return frozenset({given})
        return frozenset(given)  # type: ignore[call-overload]

    return Row(values(kinds, KINDS), values(statuses, STATUSES), values(exits, EXITS),
               values(handle_error, BOTH), values(monitored, BOTH), values(current, BOTH), rule)


def _rows() -> tuple[Row, ...]:
    Q, ST, F, L, K, D = (base.QUEUED, base.STARTED, base.FINISHED, base.LOST, base.KILLED,
                         base.DETAIL)
    running = (S.SUBMITTED, S.RUNNING, S.COMPLETING)  # active, past submitting
    failing = ExitClass.NONZERO, ExitClass.NONE  # no exit code counts as a failure
    started = Rule(note="", event_note=True, detail=RUNNING_DETAIL, event_detail=True,
                   record_handle=True, why="the backend started it")
    # An ending event records its handle too: a run first seen ended (found by recovery
    # after its STARTED event was lost with the service) keeps its backend id.
    done = Rule(detail=DONE_DETAIL, event_detail=True, record_exit_code=True, collect=True,
                record_handle=True,
                why="it finished with exit code 0: its outputs are collected, then completed or failed")
    exited = Rule(note="exit code {exit_code}", event_note=True, stderr_tail=True,
                  detail=DONE_DETAIL, event_detail=True, record_exit_code=True, record_handle=True,
                  auto_resubmit=True, why="it finished with an error (no exit code counts as one)")
    lost = Rule(note="the backend lost it without an exit status", event_note=True,
                detail=LOST_DETAIL, event_detail=True, auto_resubmit=True, record_handle=True,
                why="the work vanished without an exit status")
    killed = Rule(note="killed", event_note=True, detail=KILLED_DETAIL, record_handle=True,
                  why="stopped, the backend confirmed its resources are free")
    news = Rule(detail="", event_detail=True, backend_note=True,
                why="a backend detail: only that (and its note) changes")

    def from_submitting(rule: Rule) -> Rule:
        """An event that overtook the answer of submit(): submitted first."""
        return rule._replace(moves=(S.SUBMITTED, *rule.moves),
                             why=rule.why + " (its submit() answer not recorded yet: submitted first)")

    rows = [
        _row(ANY, ANY, Rule(skip=True, why="taken out of the monitoring loop (relaxed mode's "
                                           "unmonitor()): its events are not applied"),
             exits=ANY, handle_error=ANY, monitored=False, current=ANY),
        _row(ANY, ANY, Rule(skip=True, why="an earlier attempt's news: that run was killed and replaced"),
             handle_error=ANY, current=False),
    ]
    for status, (target, note) in REFUSED.items():
        rows.append(_row(ANY, [status], Rule(moves=(target,), note=note, at_event_time=False,
                                             why="the backend could not start it at all"),
                         handle_error=True))
    rows += [
        _row(ANY, STATUSES - set(REFUSED), Rule(why="the backend could not start it, but the job "
                                                    "moved on: nothing to change"), handle_error=True),
        _row([Q], [S.SUBMITTING], news._replace(moves=(S.SUBMITTED,), note="queued", record_handle=True,
                                                why="queued in the backend (its submit() answer not "
                                                    "recorded yet)")),
        _row([Q], STATUSES - {S.SUBMITTING}, news._replace(record_handle=True,
                                                           why="queued in the backend: only the detail")),
        _row([D], ANY, news),
        _row([ST], [S.SUBMITTING], from_submitting(started._replace(moves=(S.RUNNING,)))),
        _row([ST], [S.SUBMITTED], started._replace(moves=(S.RUNNING,))),
        _row([ST], [S.RUNNING, S.COMPLETING], started._replace(why="started again: only the detail")),
        _row([ST], NOT_ACTIVE, Rule(record_handle=True, why="not active (e.g. killed by the user): "
                                                            "only its handle is recorded")),
        _row([F], [S.SUBMITTING], from_submitting(done._replace(moves=(S.COMPLETING,))),
             exits=[ExitClass.ZERO]),
        _row([F], [S.SUBMITTED, S.RUNNING], done._replace(moves=(S.COMPLETING,)), exits=[ExitClass.ZERO]),
        _row([F], [S.COMPLETING], done._replace(why="finished again while completing: collected again"),
             exits=[ExitClass.ZERO]),
        _row([F], [S.SUBMITTING], from_submitting(exited._replace(moves=(S.FAILED,))), exits=failing),
        _row([F], running, exited._replace(moves=(S.FAILED,)), exits=failing),
        _row([L], [S.SUBMITTING], from_submitting(lost._replace(moves=(S.FAILED,)))),
        _row([L], running, lost._replace(moves=(S.FAILED,))),
        _row([K], [S.SUBMITTING], from_submitting(killed._replace(moves=(S.KILLED,)))),
        _row([K], [S.SUBMITTED, S.RUNNING], killed._replace(moves=(S.KILLED,))),
        # completing -> killed is no edge: the run had already finished (exit code 0), so
        # its outputs decide. (The monitor's old if/elif chain tried the move, and the
        # InvalidTransition aborted the whole batch.)
        _row([K], [S.COMPLETING], Rule(why="killed after it finished: its outputs decide")),
        _row([F, L, K], NOT_ACTIVE, Rule(why="already final (e.g. killed by the user), or not "
                                             "active: nothing more to say")),
    ]
    return tuple(rows)


ROWS: tuple[Row, ...] = _rows()
"""The event rules: each situation matches exactly one row."""


def records(handle: base.Handle, recorded: tuple | None) -> bool:
    """Whether a rule with ``record_handle`` stores the event's ``handle`` over the job's
    (``recorded``, a stored ``Handle.to_tuple()``): when it names the run, by a process
    or the backend's own task id, without dropping a process id already stored for the
    same attempt (a later handle may know less than the STARTED one did)."""
    if not (handle.pid or handle.task_id):
        return False
    if handle.pid or not recorded:
        return True
    stored = base.Handle.from_tuple(recorded)
    return not (stored.pid and stored.attempt == handle.attempt)


def situations() -> Iterable[Situation]:
    """Every situation: kinds x statuses x exit classes x the three yes/no conditions."""
    for kind, status, exit_, error, monitored, current in itertools.product(
            base.EVENT_KINDS, Status, ExitClass, (False, True), (True, False), (True, False)):
        yield Situation(kind, status, exit_, error, monitored, current)


def _expand(rows: tuple[Row, ...]) -> dict[Situation, Rule]:
    """Every situation -> its rule; raise unless each situation matches exactly one row."""
    rules: dict[Situation, Rule] = {}
    for row in rows:
        for s in itertools.starmap(Situation, itertools.product(
                row.kinds, row.statuses, row.exits, row.handle_error, row.monitored, row.current)):
            if s in rules:
                raise LookupError(f"two event rules match {s}; exactly one must")
            rules[s] = row.rule._replace(touch=not row.rule.skip and s.kind in ENDING_KINDS)
    missing = [s for s in situations() if s not in rules]
    if missing:
        raise LookupError(f"no event rule matches {missing[0]} (and {len(missing) - 1} more)")
    return rules


_RULES: dict[Situation, Rule] = _expand(ROWS)
_IGNORE = Rule(why="an event kind the backend contract does not know")


def rule_for(situation: Situation) -> Rule:
    """The rule for ``situation`` (a kind outside the contract: ignored)."""
    return _RULES.get(situation, _IGNORE)


def _cell(values: frozenset, order: Iterable[object], named: Mapping[frozenset, str]) -> str:
    ordered = list(order)
    if values == frozenset(ordered):
        return "any"
    if values in named:
        return named[values]
    missing = [str(v) for v in ordered if v not in values]
    if len(missing) <= 2 < len(values):
        return "any but " + ", ".join(missing)
    return ", ".join(str(v) for v in ordered if v in values)


def _condition(row: Row) -> str:
    if row.monitored == {False}:
        return "unmonitored"
    if row.current == {False}:
        return "an earlier attempt's"
    return "handle error" if row.handle_error == {True} else ""


def _then(rule: Rule) -> str:
    if rule.skip:
        return "skipped"
    said = [label for flag, label in (
        (rule.backend_note, "backend note: the event's"),
        (rule.record_handle, "handle recorded"), (rule.record_exit_code, "exit code recorded"),
        (rule.collect, "outputs collected"), (rule.auto_resubmit, "auto-resubmit"),
        (not rule.at_event_time, "stamped now")) if flag]
    return ", ".join(said) or ("" if rule.moves or rule.detail or rule.event_detail else "ignored")


def _note(rule: Rule) -> str:
    if not rule.moves:
        return ""
    note = rule.note.replace("{exit_code}", "<exit code>").replace("{error}", "<error>")
    if rule.event_note:
        note = "the event's" + (f", else {note}" if note else "")
    return note + (" + stderr tail" if rule.stderr_tail else "")


def _detail(rule: Rule) -> str:
    if rule.event_detail:
        return "the event's" + (f", else {rule.detail}" if rule.detail else "")
    return rule.detail


def table_markdown() -> str:
    """The event rules as Markdown, for the documentation."""
    named = {frozenset(NOT_ACTIVE): "not active", frozenset(ENDING_KINDS): "finished, lost, killed"}
    lines = ["| event | status | exit code | when | moves to | backend detail | note | also | why |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in ROWS:
        rule = row.rule
        lines.append("| " + " | ".join([
            _cell(row.kinds, base.EVENT_KINDS, named), _cell(row.statuses, Status, named),
            _cell(row.exits, ExitClass, {}), _condition(row),
            " → ".join(s.value for s in rule.moves), _detail(rule), _note(rule), _then(rule),
            rule.why]) + " |")
    return "\n".join(lines)
