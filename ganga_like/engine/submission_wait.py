"""Submissions held until the first events of the subjobs they queued have come.

A backend's answer to ``submit()`` (a :class:`~.context.Submission`) says which subjobs
it took; the monitor records them ``submitted``. A subjob the backend took but could
not start yet (its handle names no process or task: it waits in the actor's queue)
also gets a QUEUED event saying why it waits (``ConcurrencyLimit``, ``Resources``: its
backend detail), which the actor emits during that same ``submit()``, so it reaches the
monitor a moment after the answer. Recorded apart, the two wrote each such subjob's
record twice: a third of what the monitor wrote for 10,000 ``/bin/true`` on two slots
(issue 22). So the monitor holds such a submission until an event of each of those
subjobs has come, and applies both in one transaction: the subjob's record is written
once, ``submitted`` with its reason to wait.

Events that overtook the answer and were applied already are not waited for (the
subjobs whose events were applied lately are remembered). The hold is bounded by
:data:`SUBMISSION_WAIT` (a backend that says nothing of queued work): then the
submission is recorded as before. Events come in a few ms on a quiet machine; with the actor busy
starting processes on a loaded one, 50 ms was too short for half the batches of a
10,000-subjob run. Meanwhile the events of other subjobs are applied as they come (the
held submissions' own wait with them), so a held submission delays no other job. A
submission whose subjobs all started (a handle with a process or a task id) or were
refused is not held: a single job's ``submit()`` waits no longer.
"""

from __future__ import annotations

from ..backends import base
from .context import Submission

# The longest a submission waits for its queued subjobs' first events (the actor emits
# them during the submit; they come with its next long-poll answer, a few ms later).
SUBMISSION_WAIT = 0.5
RECENT = 5000  # subjobs remembered as having had events applied (see SubmissionWait.applied)


def accepted_not_started(submission: Submission) -> set[str]:
    """The subjobs a submission's backend took without starting them (queued there)."""
    return {fqid for fqid, _, handle in submission.pairs
            if not (handle.error or handle.pid or handle.task_id)}


class SubmissionWait:
    """The submissions held back (in the order they came) with the events of their
    subjobs, the subjobs whose first event they wait for, and until when (monotonic)
    they wait at most."""

    def __init__(self) -> None:
        self.held: list[Submission] = []
        self._fqids: set[str] = set()  # every subjob of the held submissions
        self._events: list[base.Event] = []  # their events so far, in order
        self._expected: set[str] = set()
        self._until = 0.0
        # Subjobs whose events were applied lately (two generations of at most RECENT):
        # news that overtook its submission's answer is not waited for again.
        self._recent: set[str] = set()
        self._older: set[str] = set()

    def hold(self, submission: Submission, buffered: list[base.Event],
             now: float) -> list[base.Event]:
        """Take ``submission``, and of ``buffered`` (events in hand, not applied yet) the
        events of its subjobs; returns the others."""
        fqids = {fqid for fqid, _, _ in submission.pairs}
        if not self.held:
            self._until = now + SUBMISSION_WAIT
        self.held.append(submission)
        self._fqids |= fqids
        self._expected |= accepted_not_started(submission) - self._recent - self._older
        return self.sort_out(buffered)

    def applied(self, events: list[base.Event]) -> None:
        """Events were applied (their submission's answer, if any, was not held)."""
        self._recent.update(event.fqid for event in events)
        if len(self._recent) > RECENT:
            self._older, self._recent = self._recent, set()

    def sort_out(self, events: list[base.Event]) -> list[base.Event]:
        """Keep the events of the held submissions' subjobs (each seen: no longer waited
        for); returns the others."""
        if not self._fqids:
            return events
        others = []
        for event in events:
            if event.fqid in self._fqids:
                self._events.append(event)
                self._expected.discard(event.fqid)
            else:
                others.append(event)
        return others

    def ready(self, now: float) -> bool:
        """Whether the held submissions are to be recorded now."""
        return bool(self.held) and (not self._expected or now >= self._until)

    def left(self, now: float) -> float | None:
        """How long the held submissions may still wait (None: nothing is held)."""
        if not self.held:
            return None
        return 0.0 if not self._expected else max(0.0, self._until - now)

    def take(self) -> tuple[list[Submission], list[base.Event]]:
        """The held submissions and their subjobs' events, to be applied now together."""
        held, events = self.held, self._events
        self.held, self._events = [], []
        self._fqids, self._expected = set(), set()
        return held, events
