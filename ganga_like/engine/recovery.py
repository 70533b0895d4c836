"""After a restart: adopt what an earlier session left running (the leak audit is audit.py).

Only jobs in the repository's ``active_ids`` set are looked at, so starting a
session costs nothing for finished jobs, however many are stored.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from ..backends import base
from ..backends.runtime import status_file as sf
from ..errors import GangaLikeError
from ..model.lifecycle import set_status
from ..ray_runtime import import_ray
from ..status import ACTIVE, Status, history_entries
from .context import EngineContext
from .operations.common import current_handle
from .operations.resubmit import resubmit_leaves

log = logging.getLogger(__name__)


def recover(ctx: EngineContext) -> int:
    """Adopt the active work of every job marked active; returns how many leaves."""
    ray = import_ray()
    root = ctx.store.main.root
    active_ids = getattr(root, "active_ids", None)
    if active_ids is None or not len(active_ids):
        return 0
    adopted = 0
    finished_tops: list[int] = []
    requeued: list[tuple[Any, list[Any]]] = []
    prefix = ctx.store.repo_uuid + ":"
    # What each backend with work here finds alive by marker: asked once per backend
    # (pool key), and only when one of its jobs has a leaf without a started handle.
    found_by: dict[tuple, dict[str, base.Handle]] = {}
    for top_id in list(active_ids):
        try:
            top = ctx.store.jobs.get(top_id)
        except GangaLikeError:
            finished_tops.append(top_id)
            continue
        if not top.monitored:
            finished_tops.append(top_id)
            continue
        leaves = ([sj for sj in top._subjobs.values() if Status(sj._status) in ACTIVE]
                  if top._subjobs is not None else
                  ([top] if top.status in ACTIVE else []))
        if not leaves:
            finished_tops.append(top_id)
            continue
        actor = ctx.backends.actor(top.backend)
        # A leaf's handle is its current run's only if it carries its attempt number: a
        # leaf caught in `submitting` by a resubmit still holds the previous run's.
        with_handle = [leaf for leaf in leaves if _started(leaf)]
        without = [leaf for leaf in leaves if leaf not in with_handle]
        events: list[base.Event] = []
        if with_handle:
            events.extend(ray.get(actor.adopt.remote([current_handle(leaf) for leaf in with_handle])))
        if without:
            # Not started as far as the database knows: alive by its marker, recorded as
            # started (or finished) in its status file since this attempt began, only
            # accepted (queued in the dead actor), or never sent at all.
            key = top.backend.actor_key()
            if key not in found_by:
                found_by[key] = {h.fqid: h for h in ray.get(actor.find.remote(prefix))}
            found = found_by[key]
            to_adopt = [dataclasses.replace(found[leaf.fqid], workdir=leaf.workdir,
                                            attempt=leaf.submit_counter)
                        for leaf in without if leaf.fqid in found]
            never_sent, queued = [], []
            for leaf in without:
                if leaf.fqid in found:
                    continue
                trace = run_since(leaf.workdir, attempt_started(leaf))
                if trace == "started":
                    to_adopt.append(base.Handle(top.backend.__class__.__name__, leaf.fqid,
                                                workdir=leaf.workdir, attempt=leaf.submit_counter))
                elif trace == "accepted" or leaf.status is Status.SUBMITTED:
                    queued.append(leaf)
                else:
                    never_sent.append(leaf)
            if to_adopt:
                events.extend(ray.get(actor.adopt.remote(to_adopt)))
            if never_sent:
                _roll_back(ctx, never_sent)
            if queued:
                requeued.append((top, queued))
        if events:
            ctx.monitor.inject(events)
        adopted += len(leaves)

    for top, leaves in requeued:
        resubmit_leaves(ctx, top, leaves, source="recovery",
                                 note="re-queued: the backend that queued it is gone")
    if finished_tops:
        def work() -> None:
            for top_id in finished_tops:
                active_ids.discard(top_id)

        ctx.store.write(work, note="recovery: forget finished jobs")
    return adopted


def _started(leaf: Any) -> bool:
    """Whether the leaf's current attempt has a started process on record."""
    handle = current_handle(leaf)
    return handle is not None and bool(handle.pid)


def attempt_started(leaf: Any) -> float:
    """When the leaf's current attempt began: its last move to ``submitting``."""
    for entry in reversed(history_entries(leaf.history)):
        if entry.dst == Status.SUBMITTING.value:
            return float(entry.when)
    return 0.0


def run_since(workdir: str, since: float) -> str:
    """What the status file says of a run begun after ``since``: ``started`` (a wrapper
    ran: running now, or finished), ``accepted`` (a backend queued it), or ``none``."""
    history = sf.StatusFile(os.path.join(workdir, "status")).history() if workdir else []
    recent = [info for info in history if info.when >= since]
    if any(info.state == sf.RUNNING or info.terminal for info in recent):
        return "started"
    if any(info.state in (sf.QUEUED, sf.CREATED) for info in recent):
        return "accepted"
    return "none"


def _roll_back(ctx: EngineContext, leaves: list[Any]) -> None:
    def work() -> None:
        for leaf in leaves:
            if leaf.status is Status.SUBMITTING:
                set_status(leaf, Status.NEW,
                           "recovered: the session stopped during submission and the backend "
                           "has no trace of it; submit again", source="recovery")

    ctx.store.write(work, note="recovery: roll back interrupted submissions")
