"""resubmit() and auto-resubmission."""

from __future__ import annotations

from typing import Any

from ...errors import KillNotConfirmed, OperationRefused
from ...model.job import MAX_AUTO_RESUBMITS, Job
from ...model.writes import acting_as
from ...ray_runtime import import_ray
from ...status import FROZEN, RESUBMITTABLE, Cause, Source, Status
from ..context import EngineContext, Submission
from .common import KILLABLE, begin_attempt, failed_handle, leaves_of
from .kill import kill_leaves
from .submit import mark_active, send, specs_for

AUTO_RESUBMIT_STOP_FRACTION = 0.25


def resubmit(ctx: EngineContext, job: Job, force: bool = False, include_killed: bool = False,
             only_failed: bool | None = None) -> None:
    """As Ganga: a master's failed subjobs (killed ones too with ``include_killed``; every
    finished one if ``only_failed`` is False; None: Ganga's default, True), and none of
    them: nothing to do; a single job that is final (active: with ``force``, killed
    first)."""
    ctx.store.refresh()
    if job.is_master:
        wanted = ({Status.FAILED} | ({Status.KILLED} if include_killed else set())
                  if only_failed is not False else set(RESUBMITTABLE))
        targets = leaves_of(job, wanted)
        if not targets:
            return  # (Ganga: "nothing to do for resubmit"; the GPI says so first)
    else:
        status = job.status
        if status in (Status.SUBMITTED, Status.RUNNING, Status.COMPLETING) and not force:
            raise OperationRefused(job.fqid, "resubmit", status.value,
                                   "it is still active; resubmit(force=True) kills it first")
        if status not in RESUBMITTABLE:
            raise OperationRefused(job.fqid, "resubmit", status.value,
                                   "only completed, failed or killed jobs can be resubmitted"
                                   + ("; unfreeze() it first" if status in FROZEN else ""))
        if status in KILLABLE:
            unconfirmed = kill_leaves(ctx, job, [job])
            if unconfirmed:
                raise KillNotConfirmed("the running job could not be stopped; not resubmitted",
                                       job_id=job.fqid, status=job.status.value)
            ctx.store.refresh()
        targets = [job]
    resubmit_leaves(ctx, job.master or job, targets, source=Source.USER)


def resubmit_leaves(ctx: EngineContext, top: Job, targets: list[Job], source: Source,
                     auto: bool = False, note: str = "") -> None:
    def work() -> None:
        for target in targets:
            begin_attempt(target, note or ("auto-resubmit" if auto else "resubmit()"),
                          source=source, auto=auto)
        mark_active(ctx, top)

    ctx.store.write(work, note=f"resubmit {top.fqid}")
    send(ctx, top, targets, keep_going=True)


def auto_resubmit(ctx: EngineContext, conn: Any, fqids: list[str], after: Cause | None = None) -> None:
    """Called by the monitor after failures: resubmit where the job asked for it. Its
    changes name one "auto-resubmit" cause, after ``after`` (the batch that saw them)."""
    with acting_as(ctx.new_cause("auto-resubmit", after)):
        _auto_resubmit(ctx, conn, fqids)


def _auto_resubmit(ctx: EngineContext, conn: Any, fqids: list[str]) -> None:
    by_master: dict[int, list[Job]] = {}
    for fqid in fqids:
        job = conn.jobs.get(fqid)
        top = job.master or job
        if not top.do_auto_resubmit or job.auto_resubmit_count >= MAX_AUTO_RESUBMITS:
            continue
        by_master.setdefault(top.id, []).append(job)
    for _top_id, failed in by_master.items():
        top = failed[0].master or failed[0]
        counts = top.subjob_counts
        total = sum(counts.values()) or 1
        if counts.get("failed", 0) / total >= AUTO_RESUBMIT_STOP_FRACTION and top.is_master:
            continue  # too many failures: something is wrong beyond bad luck
        # The monitor thread owns `conn`: do the write there, then send.
        def work(failed: list[Job] = failed) -> None:
            for leaf in failed:
                if leaf.status is Status.FAILED:
                    begin_attempt(leaf, "auto-resubmit", source=Source.MONITOR, auto=True)

        conn.write(work, on_commit=ctx.store.on_commit)
        ray = import_ray()
        actor = ctx.backends.actor(top.backend)
        specs = specs_for(ctx, top, [leaf for leaf in failed if leaf.status is Status.SUBMITTING])
        try:
            handles = ray.get(actor.submit.remote(specs)) if specs else []
        except Exception as exc:
            handles = [failed_handle(s, str(exc)) for s in specs]
        ctx.monitor.submit_results(Submission(
            [(s.fqid, s.attempt, h) for s, h in zip(specs, handles, strict=True)]))

