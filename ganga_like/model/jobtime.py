"""``j.time``: when a job changed status, as Ganga's JobTime shows it.

Everything is derived from the job's history (nothing is stored twice). As in
Ganga, times are ``datetime`` objects in UTC without a time zone, and the keys
are the statuses a job went through plus Ganga's summaries: ``final`` (the last
entry into completed, failed or killed), ``backend_running`` (the payload
started), ``backend_final`` (the payload ended) and ``resubmitted`` (the last
submission after the first). ``new`` is when the job was made (a subjob: when its
master was split), strictly after every job made before it (``new_stamps``). A master's own history holds
its derived changes, so its times are read without loading its subjobs
(``runtime()`` and ``waittime()`` of a master do read them, as in Ganga).
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

from ..errors import InvalidValue
from ..status import Status, history_entries
from .component import ReadOnly, ReadOnlyView

FINAL = ("completed", "failed", "killed")
PAYLOAD_ENDED = ("completing", "completed", "failed")  # entered from running
STATUS_NAMES = tuple(s.value for s in Status)
MASTER_OWN = ("new", "submitting", "killed")  # a master's own stamps (Ganga's ganga_master)
LATEST = ("backend_final", "final")  # a master shows its subjobs' latest of these


_last_new_us = [0]  # the last 'new' time this process gave, in microseconds
_new_lock = threading.Lock()


def new_stamps(count: int, after: float | None = None) -> list[float]:
    """``count`` 'new' times for jobs made now, in the order they are made: strictly
    increasing by whole microseconds (what a ``datetime`` shows), each later than
    ``after`` (a master's, for its subjobs) and than any this process gave before, so
    two jobs made within one clock tick still read in the order Ganga gives them."""
    with _new_lock:
        first = max(time.time_ns() // 1000, _last_new_us[0] + 1,
                    0 if after is None else round(after * 1e6) + 1)
        _last_new_us[0] = first + count - 1
    return [(first + i) / 1e6 for i in range(count)]


def _utc(stamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).replace(tzinfo=None)


def stamp_names(src: str, dst: str, resubmission: bool) -> tuple[str, ...]:
    """The stamps a (sub)job reaches by moving from ``src`` to ``dst``: the status, and
    Ganga's summaries (``resubmission``: a submitting after the first)."""
    return ((dst,) + (("final",) if dst in FINAL else ())
            + (("backend_running",) if dst == "running" else ())
            + (("backend_final",) if src == "running" and dst in PAYLOAD_ENDED else ())
            + (("resubmitted",) if dst == "submitting" and resubmission else ()))


def _stamps(job: Any) -> dict[str, float]:
    stamps: dict[str, float] = {}
    # A subjob made before subjobs had their own 'new' shows its master's.
    created = job.created if job.created is not None or job.master is None else job.master.created
    if created is not None:
        stamps["new"] = created
    submissions = 0
    for entry in history_entries(job.history):
        submissions += entry.dst == "submitting"
        for name in stamp_names(entry.src, entry.dst, submissions > 1):
            stamps[name] = entry.when
    counts = job._counts
    if job._subjobs is not None and counts is not None and counts.firsts:
        # A master, as Ganga shows it: 'new', 'submitting' and 'killed' are its own; every
        # other stamp is its subjobs' earliest, 'backend_final' and 'final' their latest.
        stamps = {k: v for k, v in stamps.items() if k in MASTER_OWN}
        for name, first in counts.firsts.items():
            if name not in MASTER_OWN:
                stamps[name] = counts.lasts[name] if name in LATEST else first
    return dict(sorted(stamps.items(), key=lambda item: item[1]))


class JobTime(ReadOnlyView):
    """When the job changed status (UTC ``datetime`` values, as in Ganga).

    ``j.time.new()``, ``submitting()``, ``submitted()``, ``running()``,
    ``completing()``, ``final()``, ``backend_running()``, ``backend_final()`` and
    ``completed()``/``failed()``/``killed()`` return a ``datetime`` (``None`` if the
    job has not been there; ``format='%H:%M'`` gives a string instead);
    ``timestamps`` is the whole dict; ``runtime()``, ``waittime()``,
    ``submissiontime()`` and ``duration(start, end)`` return a ``timedelta``;
    ``display()`` is the table; ``details()`` what the backend reported of the run
    (``details(3)`` or ``details('all')`` on a master).
    """

    WHAT = "j.time reports when the job changed status; nothing in it is set by hand"

    timestamps = ReadOnly(lambda self: {k: _utc(v) for k, v in _stamps(self._job).items()},
                          "when the job entered each status, from its history")

    def statetime(self, status: str, format: str | None = None) -> Any:  # noqa: A002 (Ganga's name)
        stamp = _stamps(self._job).get(status)
        if stamp is None:
            return None
        when = _utc(stamp)
        return when.strftime(format) if format is not None else when

    def new(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("new", format)

    def submitting(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("submitting", format)

    def submitted(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("submitted", format)

    def running(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("running", format)

    def completing(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("completing", format)

    def final(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("final", format)

    def backend_running(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("backend_running", format)

    def backend_final(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("backend_final", format)

    def backend_completing(self, format: str | None = None) -> Any:  # noqa: A002
        return self.statetime("backend_completing", format)  # no backend reports it

    def __getattr__(self, status: str) -> Any:
        # j.time.completed(), j.time.failed(), ...: any status name.
        if status not in STATUS_NAMES:
            raise AttributeError(status)
        return lambda format=None: self.statetime(status, format)  # noqa: A002

    # -- durations ------------------------------------------------------------------------
    def duration(self, start: str, end: str) -> datetime.timedelta | None:
        """The time from timestamp ``start`` to ``end`` (None if either is missing)."""
        stamps = _stamps(self._job)
        if start not in stamps or end not in stamps:
            return None
        return _utc(stamps[end]) - _utc(stamps[start])

    def runtime(self) -> datetime.timedelta | None:
        """How long the payload ran (a master: the sum over its subjobs)."""
        job = self._job
        if job._subjobs is not None:
            times = [sj.time.runtime() for sj in job._subjobs.values()]
            times = [t for t in times if t is not None]
            return sum(times, datetime.timedelta(0)) if times else None
        return self.duration("backend_running", "backend_final")

    def waittime(self) -> datetime.timedelta | None:
        """From submitted to running (a master: first submitted to last started)."""
        job = self._job
        if job._subjobs is not None:
            starts = [s for s in (sj.time.submitted() for sj in job._subjobs.values()) if s]
            ends = [e for e in (sj.time.backend_running() for sj in job._subjobs.values()) if e]
            return max(ends) - min(starts) if starts and ends else None
        return self.duration("submitted", "backend_running")

    def submissiontime(self) -> datetime.timedelta | None:
        """From submitting to submitted."""
        return self.duration("submitting", "submitted")

    # -- the backend's account of the run ---------------------------------------------------
    def details(self, subjob: Any = None) -> dict[str, Any] | None:
        """What the backend reported of the run: ``{'START': ..., 'STOP': ...}`` (UTC),
        with the host, id and exit code. On a master: ``details(3)`` for subjob 3,
        ``details('all')`` for every subjob (keyed by fqid); ``details()`` gives None,
        as in Ganga."""
        job = self._job
        if job._subjobs is None:
            return _run_details(job)
        if subjob is None:
            return None
        if subjob == "all":
            return {sj.fqid: _run_details(sj) for sj in job._subjobs.values()}
        if isinstance(subjob, bool) or not isinstance(subjob, int):
            raise InvalidValue("JobTime.details", "subjob", subjob,
                               f"a subjob id (0..{len(job.subjobs) - 1}), 'all' or None")
        return _run_details(job.subjobs[subjob])

    def printdetails(self, subjob: Any = None) -> None:
        """Print ``details(subjob)``, one ``key<TAB>value`` line each."""
        found = self.details(subjob)
        if found is None:
            print(f"job {self._job.fqid} has subjobs: printdetails(<subjob id>) or "
                  f"details('all')")
            return
        for key, value in found.items():
            print(f"{key}\t{value}")

    # -- shown as a table -------------------------------------------------------------------
    def display(self, format: str = "%Y/%m/%d %H:%M:%S") -> str:  # noqa: A002
        """The timestamps as a table (UTC), oldest first."""
        width = len(datetime.datetime.now().strftime(format))
        lines = ["Time (UTC)".rjust(width) + "   Status", ("- " * 21).rstrip()]
        for key, stamp in _stamps(self._job).items():
            lines.append(_utc(stamp).strftime(format).rjust(width) + " - " + key)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.display()

    def __repr__(self) -> str:
        return "JobTime (\n" + "\n".join("  " + line for line in self.display().splitlines()) + "\n)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _run_details(job: Any) -> dict[str, Any]:
    stamps = _stamps(job)
    backend = job.backend
    details: dict[str, Any] = {
        "START": _utc(stamps["backend_running"]) if "backend_running" in stamps else None,
        "STOP": _utc(stamps["backend_final"]) if "backend_final" in stamps else None,
    }
    if backend is not None and hasattr(backend, "run_info"):
        info = backend.run_info()
        details.update(HOST=info["actualCE"], ID=info["id"], EXITCODE=info["exitcode"])
    return details
