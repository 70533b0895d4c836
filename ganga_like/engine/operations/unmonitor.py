"""unmonitor(): relaxed mode's way to stop following a job without killing it.

The strict default never lets work out of sight while it may hold a resource; a
user who does not care (relaxed mode) may take a job out of the monitoring loop.
Its statuses then stay as they were, and every handle it may still hold is written
to the leak ledger, so ``leaks()`` can find and reap it later.
"""

from __future__ import annotations

from ...errors import OperationRefused
from ...model.job import Job
from ...repository.ledger import Ledger
from ...status import ACTIVE
from ..context import EngineContext
from .common import active_set, handle_to_stop, leaves_of


def unmonitor(ctx: EngineContext, job: Job) -> None:
    top = job.master or job
    if job.master is not None:
        raise OperationRefused(job.fqid, "unmonitor", job.status.value,
                               f"only a whole job leaves the monitoring loop; use jobs({top.id})")
    if ctx.store.mode_of(top) != "relaxed":
        raise OperationRefused(job.fqid, "unmonitor", job.status.value,
                               "strict mode keeps every job monitored until its resources are "
                               "free; kill() it, or set j.mode = 'relaxed' first")
    ctx.store.refresh()
    # Leaves still in `submitting` too: their backend may have them queued already.
    held = leaves_of(top, ACTIVE)
    name = type(top.backend).__name__

    def work() -> None:
        top.monitored = False
        ledger = Ledger(ctx.store.main)
        for leaf in held:
            ledger.record(leaf, "taken out of the monitoring loop (relaxed mode)",
                          handle_to_stop(leaf, name).to_tuple())
        active_set(ctx.store.main.root).discard(top.id)

    ctx.store.write(work, note=f"unmonitor {top.fqid}")

