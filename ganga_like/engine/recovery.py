"""After a restart: adopt what an earlier session left running (the leak audit is audit.py).

Only jobs in the repository's ``active_ids`` set are looked at, so starting a
session costs nothing for finished jobs, however many are stored.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ..backends import base
from ..backends.runtime import status_file as sf
from ..backends.runtime import trace
from ..errors import GangaLikeError
from ..model.job import Job
from ..model.lifecycle import set_status
from ..model.stream import stream_of
from ..model.writes import acting_as
from ..ray_runtime import import_ray
from ..status import ACTIVE, Source, Status, history_entries
from .context import EngineContext
from .operations.common import current_handle, leaves_of
from .operations.resubmit import resubmit_leaves
from .operations.submit import send

log = logging.getLogger(__name__)


def recover(ctx: EngineContext) -> int:
    """Adopt the active work of every job marked active; returns how many leaves. What it
    changes names one "recovery #<id>" cause (an auto-resubmit it starts: "after" it)."""
    with acting_as(ctx.new_cause("recovery")):
        return _recover(ctx)


def _recover(ctx: EngineContext) -> int:
    active_ids = getattr(ctx.store.main.root, "active_ids", None)
    if active_ids is None or not len(active_ids):
        return 0
    finder = _Finder(ctx.store.repo_uuid + ":")
    finished_tops: list[int] = []
    requeued: list[tuple[Job, list[Job]]] = []
    adopted = 0
    streaming: list[int] = []
    for top_id in list(active_ids):
        top = _top_to_recover(ctx, top_id)
        leaves = _active_leaves(top) if top is not None else []
        if top is None or (not leaves and (top._counts is None or stream_of(top) is None)):
            finished_tops.append(top_id)
            continue
        if leaves:
            queued = _recover_top(ctx, finder, top, leaves)
            if queued:
                requeued.append((top, queued))
            adopted += len(leaves)
        stream = stream_of(top) if top._counts is not None else None
        if stream is not None:  # subjobs left to send (its roll-backs included)
            log.info("job %s: sending the %d of its %d subjobs its submission had not sent",
                     top_id, stream.left, stream.total)
            streaming.append(top_id)
    for top, leaves in requeued:
        _send_again(ctx, top, leaves)
    for top_id in streaming:
        ctx.streams.start(top_id)  # after the roll-backs, which put their leaves back in it
    if finished_tops:
        def work() -> None:
            for top_id in finished_tops:
                active_ids.discard(top_id)

        ctx.store.write(work, note="recovery: forget finished jobs")
    return adopted


def _send_again(ctx: EngineContext, top: Job, leaves: list[Job]) -> None:
    """Leaves only queued in a dead actor. One still `submitting` was only accepted there
    (never started, never recorded): sent again as the same attempt. One `submitted`
    is re-queued, a new attempt."""
    unsent = [leaf for leaf in leaves if leaf.status is Status.SUBMITTING]
    queued = [leaf for leaf in leaves if leaf.status is not Status.SUBMITTING]
    if unsent:
        send(ctx, top, unsent, keep_going=True)
    if queued:
        resubmit_leaves(ctx, top, queued, source=Source.RECOVERY,
                        note="re-queued: the backend that queued it is gone")


@dataclasses.dataclass
class _Unstarted:
    """Leaves with no started process on record, sorted by what is known of them."""

    to_adopt: list[base.Handle] = dataclasses.field(default_factory=list)  # alive, or it ran
    queued: list[Job] = dataclasses.field(default_factory=list)  # only queued in the dead actor
    never_sent: list[Job] = dataclasses.field(default_factory=list)  # no trace anywhere


class _Finder:
    """What each backend with work here finds alive by marker: asked once per backend
    (pool key), and only when one of its jobs has a leaf without a started handle."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.found_by: dict[tuple, dict[str, base.Handle]] = {}

    def found(self, top: Job, actor: Any) -> dict[str, base.Handle]:
        key = top.backend.actor_key()
        if key not in self.found_by:
            handles = import_ray().get(actor.find.remote(self.prefix))
            self.found_by[key] = {h.fqid: h for h in handles}
        return self.found_by[key]


def _top_to_recover(ctx: EngineContext, top_id: int) -> Job | None:
    """The top job, or None when it is gone or out of the monitoring loop."""
    try:
        top = ctx.store.jobs.get(top_id)
    except GangaLikeError:
        return None
    return top if top.monitored else None


def _active_leaves(top: Job) -> list[Job]:
    return leaves_of(top, ACTIVE)  # (a master's from its index: the active ones only)


def _recover_top(ctx: EngineContext, finder: _Finder, top: Job, leaves: list[Job]) -> list[Job]:
    """Adopt one top job's leaves, roll back those never sent; return those to queue again."""
    ray = import_ray()
    actor = ctx.backends.actor(top.backend)
    # A leaf's handle is its current run's only if it carries its attempt number: a
    # leaf caught in `submitting` by a resubmit still holds the previous run's.
    with_handle = [leaf for leaf in leaves if _started(leaf)]
    without = [leaf for leaf in leaves if leaf not in with_handle]
    events: list[base.Event] = []
    if with_handle:
        events.extend(ray.get(actor.adopt.remote([current_handle(leaf) for leaf in with_handle])))
    unstarted = _sort_unstarted(top, without, finder.found(top, actor)) if without else _Unstarted()
    if unstarted.to_adopt:
        events.extend(ray.get(actor.adopt.remote(unstarted.to_adopt)))
    if unstarted.never_sent:
        _roll_back(ctx, unstarted.never_sent)
    if events:
        ctx.monitor.inject(events)
    return unstarted.queued


def _sort_unstarted(top: Job, without: list[Job], found: dict[str, base.Handle]) -> _Unstarted:
    """Not started as far as the database knows: alive by its marker, recorded as
    started (or finished) in its status file since this attempt began, only accepted
    (queued in the dead actor), or never sent at all."""
    unstarted = _Unstarted()
    for leaf in without:
        if leaf.fqid in found:
            unstarted.to_adopt.append(dataclasses.replace(
                found[leaf.fqid], workdir=leaf.workdir, attempt=leaf.submit_counter))
            continue
        trace = run_since(leaf.workdir, attempt_started(leaf))
        if trace == "started":
            unstarted.to_adopt.append(base.Handle(top.backend.__class__.__name__, leaf.fqid,
                                                  workdir=leaf.workdir, attempt=leaf.submit_counter))
        elif trace == "accepted" or leaf.status is Status.SUBMITTED:
            unstarted.queued.append(leaf)
        else:
            unstarted.never_sent.append(leaf)
    return unstarted


def _started(leaf: Job) -> bool:
    """Whether the leaf's current attempt has a started process on record."""
    handle = current_handle(leaf)
    return handle is not None and bool(handle.pid)


def attempt_started(leaf: Job) -> float:
    """When the leaf's current attempt began: its last move to ``submitting``."""
    for entry in reversed(history_entries(leaf.history)):
        if entry.dst == Status.SUBMITTING.value:
            return float(entry.when)
    return 0.0


def run_since(workdir: str, since: float) -> str:
    """What the status file says of a run begun after ``since``: ``started`` (a wrapper
    ran: running now, or finished), ``accepted`` (a backend queued it), or ``none``."""
    history = trace.history(workdir)
    recent = [info for info in history if info.when >= since]
    if any(info.state == sf.RUNNING or info.terminal for info in recent):
        return "started"
    if any(info.state in (sf.QUEUED, sf.CREATED) for info in recent):
        return "accepted"
    return "none"


def _roll_back(ctx: EngineContext, leaves: list[Job]) -> None:
    def work() -> None:
        for leaf in leaves:
            if leaf.status is Status.SUBMITTING:
                stream = leaf.master._stream if leaf.master is not None else None
                if stream is not None and not stream.stopped:  # the stream sends it again
                    stream.next_id = min(stream.next_id, leaf.id or 0)
                    stream.left += 1
                set_status(leaf, Status.NEW,
                           "recovered: the session stopped during submission and the backend "
                           "has no trace of it; " + ("its master's submission sends it again"
                                                     if stream is not None and not stream.stopped
                                                     else "submit again"),
                           source=Source.RECOVERY)

    ctx.store.write(work, note="recovery: roll back interrupted submissions")
