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


def begin_auto_resubmits(ctx: EngineContext, jobs: Any, fqids: list[str],
                         after: Cause | None = None) -> list[list[Job]]:
    """Inside the monitor's write that recorded the failures: begin a new attempt of
    each failed leaf whose job asked for it, in that same transaction, so no reader
    (``wait()``) ever sees such a leaf ``failed`` and a SIGKILL before the send leaves
    it ``submitting``, which recovery sends. Its changes name one "auto-resubmit" cause,
    after ``after`` (the batch). Returns the leaves begun, by master, for
    :func:`send_auto_resubmits` once the write committed."""
    by_master: dict[int, list[Job]] = {}
    for fqid in fqids:
        job = jobs.get(fqid)
        top = job.master or job
        if job.status is Status.FAILED and top.do_auto_resubmit \
                and job.auto_resubmit_count < MAX_AUTO_RESUBMITS:
            by_master.setdefault(top.id, []).append(job)
    begun: list[list[Job]] = []
    for failed in by_master.values():
        top = failed[0].master or failed[0]
        counts = top.subjob_counts
        if top.is_master and counts.get("failed", 0) / (sum(counts.values()) or 1) \
                >= AUTO_RESUBMIT_STOP_FRACTION:
            continue  # too many failures: something is wrong beyond bad luck
        with acting_as(ctx.new_cause("auto-resubmit", after)):
            for leaf in failed:
                begin_attempt(leaf, "auto-resubmit", source=Source.MONITOR, auto=True)
        begun.append(failed)
    return begun


def send_auto_resubmits(ctx: EngineContext, begun: list[list[Job]]) -> None:
    """Send what :func:`begin_auto_resubmits` began, once its write committed."""
    ray = import_ray()
    for leaves in begun:
        top = leaves[0].master or leaves[0]
        actor = ctx.backends.actor(top.backend)
        specs = specs_for(ctx, top, [leaf for leaf in leaves if leaf.status is Status.SUBMITTING])
        try:
            handles = ray.get(actor.submit.remote(specs)) if specs else []
        except Exception as exc:
            handles = [failed_handle(s, str(exc)) for s in specs]
        ctx.monitor.submit_results(Submission(
            [(s.fqid, s.attempt, h) for s, h in zip(specs, handles, strict=True)]))

