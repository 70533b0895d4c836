"""``jobs`` and ``templates`` as a Ganga user knows them, over the default session.

``jobs(3)``, ``jobs('3.14')``, ``jobs[-1]``, ``len(jobs)``, ``for j in jobs``,
``jobs.select(status='failed', name='sim*', minid=10, maxid=20)``, ``jobs.wait()``.
Showing ``jobs`` reads only the rows it shows (the newest ``ROWS_SHOWN``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model.job import Job
from ..model.slices import JobSlice
from ..model.table import PrettyPrinter, html_table, job_row, plural, render, use_colour

ROWS_SHOWN = 50


class RegistryView:
    _attr = "jobs"
    _what = "jobs"

    def __init__(self, session_provider: Any = None) -> None:
        self._provider = session_provider

    def _session(self) -> Any:
        if self._provider is not None:
            return self._provider()
        from ..client.default import default_session

        return default_session()

    def _registry(self) -> Any:
        session = self._session()
        session.refresh()
        return getattr(session, self._attr)

    def __call__(self, wanted: Any) -> Job:
        return self._registry().get(wanted)

    def __getitem__(self, wanted: Any) -> Any:
        if isinstance(wanted, slice):
            registry = self._registry()
            ids = registry.ids()
            return JobSlice([registry.get(i) for i in ids[wanted]], self._what)
        return self._registry().get(wanted)

    def __len__(self) -> int:
        return len(self._registry())

    def __iter__(self) -> Iterator[Job]:
        return iter(self._registry())

    def ids(self) -> list[int]:
        return self._registry().ids()

    def select(self, minid: int | None = None, maxid: int | None = None,
               **criteria: Any) -> JobSlice:
        """A slice (status=, name='sim*', id=, application='Executable', backend='Local'),
        with the verbs: ``jobs.select(status='failed').resubmit()``."""
        return JobSlice(self._registry().select(minid, maxid, **criteria), self._what)

    def _all(self) -> JobSlice:
        return JobSlice(list(self._registry()), self._what)

    def submit(self, keep_going: bool = False) -> JobSlice:
        """Submit every new job (Ganga's ``jobs.submit()``)."""
        return self.select(status="new").submit(keep_going=keep_going)

    def kill(self, keep_going: bool = False) -> None:
        """Kill every job that runs or waits to (Ganga's ``jobs.kill()``)."""
        self.select(status=["submitted", "running"]).kill(keep_going=keep_going)

    def resubmit(self, keep_going: bool = False, force: bool = False) -> None:
        self.select(status=["failed", "killed"]).resubmit(keep_going=keep_going, force=force)

    def remove(self, keep_going: bool = False, force: bool = False) -> None:
        """Remove every job (each is killed first; ``force`` as in ``j.remove``)."""
        self._all().remove(keep_going=keep_going, force=force)

    def copy(self, keep_going: bool = False) -> JobSlice:
        """Copy every job (Ganga's ``jobs.copy()``); the slice of the new copies."""
        return self._all().copy(keep_going=keep_going)

    def rows(self, limit: int = ROWS_SHOWN) -> tuple[list[tuple[str, ...]], int]:
        registry = self._registry()
        return [job_row(j) for j in registry.last(limit)], len(registry)

    def footer(self, shown: int, total: int) -> str:
        """How many there are and, when only the newest are shown, how to see the rest."""
        if shown == total:
            return plural(total, self._what[:-1])
        name = self._attr
        return (f"the newest {shown} of {total} {self._what}\n"
                f"the rest: {name}[:{total - shown}]; by status: {name}.select(status='failed')")

    def table(self, limit: int = ROWS_SHOWN, colour: bool = False) -> str:
        rows, total = self.rows(limit)
        return render(rows, self.footer(len(rows), total), colour=colour)

    def __repr__(self) -> str:
        return self.table()

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        printer.text(self.table(colour=use_colour()))

    def _repr_html_(self) -> str:
        rows, total = self.rows()
        return html_table(rows, self.footer(len(rows), total))


class JobsView(RegistryView):
    """All jobs of the repository (Ganga's ``jobs``)."""

    def wait(self, timeout: float | None = None, jobs: Any = None) -> list[Any]:
        """Block until the given jobs (default: every active one) are final."""
        session = self._session()
        if jobs is None:
            from ..status import ACTIVE

            jobs = session.jobs.select(status=[s.value for s in ACTIVE])  # (by the index)
        return session.wait(jobs, timeout=timeout)


class TemplatesView(RegistryView):
    """Saved job templates (Ganga's ``templates``)."""

    _attr = "templates"
    _what = "templates"
