"""force_status(), freeze() and unfreeze()."""

from __future__ import annotations

from ...errors import InvalidValue, KillNotConfirmed, OperationRefused
from ...model.job import Job
from ...model.lifecycle import set_status
from ...status import Source, Status
from ..context import EngineContext
from .common import KILLABLE, leaves_of, stop_stream
from .kill import kill_leaves


def force_status(ctx: EngineContext, job: Job, status: str, force: bool = False) -> None:
    target = Status.parse(status)
    if target not in (Status.FAILED, Status.COMPLETED):
        raise InvalidValue("force_status", "status", status, "'failed' or 'completed'")
    if target is Status.FAILED:
        stop_stream(ctx, job, "force_status('failed')")
    ctx.store.refresh()
    if target is Status.FAILED:
        sources = {Status.SUBMITTED, Status.RUNNING, Status.KILLED, Status.COMPLETING,
                   Status.COMPLETED}
    else:
        sources = {Status.FAILED}
    leaves = leaves_of(job, sources)
    if not leaves:
        raise OperationRefused(job.fqid, f"force_status('{target.value}')", job.status.value,
                               "it may only be forced from "
                               + ", ".join(sorted(s.value for s in sources)))
    active = [leaf for leaf in leaves if leaf.status in KILLABLE]
    if active:
        # Forced past an unconfirmed kill, what may still run goes to the leak ledger (as
        # remove(force=True) does): the job is declared final, the work is not forgotten.
        unconfirmed = kill_leaves(ctx, job, active, ledger_reason=(
            f"force_status('{target.value}', force=True) with an unconfirmed kill" if force else ""))
        if unconfirmed and not force:
            raise KillNotConfirmed("not forced: the running work could not be stopped",
                                   job_id=job.fqid, status=job.status.value)
        ctx.store.refresh()

    def work() -> None:
        for leaf in leaves:
            if leaf.status in sources or leaf.status is Status.KILLED:
                if leaf.status is not target:
                    set_status(leaf, target, f"force_status('{target.value}')", source=Source.USER)

    ctx.store.write(work, note=f"force_status {job.fqid}")


def freeze(ctx: EngineContext, job: Job) -> None:
    mapping = {Status.COMPLETED: Status.COMPLETED_FROZEN, Status.FAILED: Status.FAILED_FROZEN,
               Status.KILLED: Status.FAILED_FROZEN}
    refreeze(ctx, job, mapping, "freeze")


def unfreeze(ctx: EngineContext, job: Job) -> None:
    mapping = {Status.COMPLETED_FROZEN: Status.COMPLETED, Status.FAILED_FROZEN: Status.FAILED}
    refreeze(ctx, job, mapping, "unfreeze")


def refreeze(ctx: EngineContext, job: Job, mapping: dict[Status, Status], verb: str) -> None:
    ctx.store.refresh()
    leaves = leaves_of(job, mapping)
    if not leaves:
        raise OperationRefused(job.fqid, verb, job.status.value,
                               f"only {', '.join(s.value for s in mapping)} jobs can be {verb}d")

    def work() -> None:
        for leaf in leaves:
            if leaf.status in mapping:
                set_status(leaf, mapping[leaf.status], f"{verb}()", source=Source.USER)

    ctx.store.write(work, note=f"{verb} {job.fqid}")

