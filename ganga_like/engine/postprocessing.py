"""The completing step and the master's postprocessing, in Ganga's order.

Per (sub)job whose payload exited 0 (``run_for_subjob``, called by the monitor in
the ``completing`` step, outside any transaction): the output files are collected
(``j.outputfiles``), then the checkers decide ``completed`` or ``failed``.

Per master that became final (``run_for_master``): the mergers, then the notifiers.
A merger's refusal cannot make a derived master status ``failed``, so it is
recorded as the master's ``reason`` (shown by ``print(j)`` when the master is
failed) and appended to ``<workspace>/postprocessing.log``.

See ``model/postprocessors.py`` for how this maps onto Ganga's order (mergers,
checkers, notifiers).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from ..errors import GangaLikeError
from ..model.files import collect_outputs
from ..model.job import Job

log = logging.getLogger(__name__)

REASON_PREFIX = "postprocessing: "  # marks the reasons written here (so they can be cleared)
LOG_NAME = "postprocessing.log"


def has_completing_work(job: Job) -> bool:
    """Whether :func:`run_for_subjob` has anything to do for ``job``: an output file to
    collect or a checker to run. Without either its answer is known, ``(True, "")``,
    and the monitor records ``completed`` in the transaction that records
    ``completing``, rather than in a second one (the history holds both moves alike)."""
    top = job.master or job
    return any(getattr(item, "collect", None) is not None for item in top.outputfiles) or any(
        getattr(processor, "check", None) is not None for processor in top.postprocessors)


def run_for_subjob(job: Any) -> tuple[bool, str]:
    """Return (ok, note) for one (sub)job that finished with exit code 0.

    Output files first (a checker may look at them), then each checker in the
    order of ``postprocessors``; the first refusal decides.
    """
    top = job.master or job
    note = ""
    try:
        found = collect_outputs(job)
    except (OSError, GangaLikeError) as exc:
        return False, f"output files: {exc}"
    empty = [pattern for pattern, paths in found.items() if not paths]
    if empty:
        # Ganga warns rather than fails for a missing output file; the note is kept
        # in the history of the completed (sub)job.
        note = "no output file matched " + ", ".join(repr(p) for p in empty)
    for processor in top.postprocessors:
        check = getattr(processor, "check", None)
        if check is None:
            continue
        try:
            ok, why = check(job)
        except GangaLikeError as exc:  # a checker that cannot check as configured
            return False, str(exc)
        if not ok:
            return False, why
    return True, note


def run_for_master(master: Any) -> None:
    """Run the master-level postprocessors of a final master: mergers, then notifiers.

    Called by the monitor, outside any transaction, each time a batch leaves the
    master in a final status (so a resubmitted subjob triggers a fresh merge).
    A refusal or error of one postprocessor does not stop the others; the notes
    are recorded on the master (see the module docstring).
    """
    notes: list[str] = []
    for method in ("merge", "notify"):  # Ganga's order: mergers before notifiers
        for processor in master.postprocessors:
            run = getattr(processor, method, None)
            if run is None:
                continue
            try:
                ok, note = run(master)
            except Exception as exc:  # one broken postprocessor must not hide the others
                log.exception("%s of job %s failed", type(processor).__name__, master.fqid)
                ok, note = False, f"{type(processor).__name__} raised {type(exc).__name__}: {exc}"
            if not ok:
                notes.append(note)
    _record(master, notes)


def _record(master: Any, notes: list[str]) -> None:
    """Keep the notes as the master's reason and in its postprocessing log."""
    reason = (REASON_PREFIX + "; ".join(notes))[:1000] if notes else ""
    if notes and master.workspace:
        try:
            os.makedirs(master.workspace, exist_ok=True)
            with open(os.path.join(master.workspace, LOG_NAME), "a", encoding="utf-8") as handle:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                handle.writelines(f"{stamp} {note}\n" for note in notes)
        except OSError:
            log.warning("cannot write the postprocessing log of job %s", master.fqid)
    current = master.reason
    if reason == current or (not reason and not current.startswith(REASON_PREFIX)):
        return  # nothing new; never clear a reason that another part wrote

    def work() -> None:
        master.reason = reason

    jar = getattr(master, "_p_jar", None)
    if jar is None:
        work()
        return
    from ..repository.transactions import write

    try:
        write(jar, work, note=f"postprocessing notes of {master.fqid}")
    except Exception:  # the notes are in the log file; the monitor must go on
        log.exception("cannot record the postprocessing notes of job %s", master.fqid)
