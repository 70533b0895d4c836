"""kill(): stop work and record `killed` only where the backend confirms it."""

from __future__ import annotations

from ...errors import KillNotConfirmed, OperationRefused
from ...model.job import Job
from ...model.lifecycle import set_status
from ...ray_runtime import import_ray
from ...repository.ledger import Ledger
from ...status import Source, Status
from ..context import EngineContext
from .common import HOST, KILL_GRACE, KILLABLE, handle_to_stop, leaves_of, stop_stream


def kill(ctx: EngineContext, job: Job) -> None:
    stop_stream(ctx, job, f"kill {job.fqid}")
    ctx.store.refresh()
    targets = leaves_of(job, KILLABLE)
    if not targets:
        raise OperationRefused(job.fqid, "kill", job.status.value,
                               "nothing to kill: it is not submitted or running")
    unconfirmed = kill_leaves(ctx, job, targets)
    if unconfirmed and ctx.store.mode_of(job) == "strict":
        raise KillNotConfirmed(
            f"the backend could not confirm that {len(unconfirmed)} subjob(s) stopped "
            f"({', '.join(unconfirmed[:5])}); they stay in their status. Retry kill(), "
            f"or remove(force=True) to give up on them (recorded in the leak ledger)",
            job_id=job.fqid, status=job.status.value,
        )


def kill_leaves(ctx: EngineContext, top: Job, targets: list[Job], ledger_reason: str = "") -> list[str]:
    """Kill and record ``killed`` where confirmed; return the unconfirmed fqids."""
    ray = import_ray()
    backend = (top.master or top).backend
    actor = ctx.backends.actor(backend)
    results = {}
    if targets:
        handles = [handle_to_stop(t, type(backend).__name__) for t in targets]
        for r in ray.get(actor.kill.remote(handles, KILL_GRACE)):
            results[r.fqid] = r
    relaxed = ctx.store.mode_of(top) == "relaxed"
    unconfirmed: list[str] = []

    def work() -> None:
        unconfirmed.clear()
        ledger = Ledger(ctx.store.main)
        for target in targets:
            if target.status not in KILLABLE:
                continue  # it finished meanwhile
            result = results.get(target.fqid)
            if result is not None and result.confirmed:
                set_status(target, Status.KILLED, result.note or "killed, confirmed",
                           source=Source.USER, host=HOST)
            elif relaxed or ledger_reason:
                note = "kill not confirmed" + (f": {result.note}" if result else ": no handle")
                set_status(target, Status.KILLED, note + " (relaxed mode)" if relaxed else note,
                           source=Source.USER, host=HOST)
                ledger.record(target, ledger_reason or "killed in relaxed mode",
                              handle_to_stop(target, type(backend).__name__).to_tuple())
            else:
                unconfirmed.append(target.fqid)

    ctx.store.write(work, note=f"kill {top.fqid}")
    ctx.notify_changed()
    return unconfirmed

