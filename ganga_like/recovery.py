"""After a restart: adopt what an earlier session left running; audit leaks.

Only jobs in the repository's ``active_ids`` set are looked at, so starting a
session costs nothing for finished jobs, however many are stored.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from . import status_file as sf
from .backends import base
from .errors import GangaLikeError
from .model.lifecycle import set_status
from .repository.ledger import Ledger
from .operations.common import current_handle
from .operations.resubmit import resubmit_leaves
from .status import ACTIVE, FINAL, Status

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

log = logging.getLogger(__name__)


def recover(session: "Session") -> int:
    """Adopt the active work of every job marked active; returns how many leaves."""
    import ray

    root = session.main.root
    active_ids = getattr(root, "active_ids", None)
    if active_ids is None or not len(active_ids):
        return 0
    adopted = 0
    finished_tops: list[int] = []
    requeued: list[tuple[Any, list[Any]]] = []
    prefix = session.repo_uuid + ":"
    for top_id in list(active_ids):
        try:
            top = session.jobs.get(top_id)
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
        actor = session.backends.actor(top.backend)
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
            found = {h.fqid: h for h in ray.get(actor.find.remote(prefix))}
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
                _roll_back(session, never_sent)
            if queued:
                requeued.append((top, queued))
        if events:
            session.monitor.inject(events)
        adopted += len(leaves)

    for top, leaves in requeued:
        resubmit_leaves(session, top, leaves, source="recovery",
                                 note="re-queued: the backend that queued it is gone")
    if finished_tops:
        def work() -> None:
            for top_id in finished_tops:
                root.active_ids.discard(top_id)

        session.write(work, note="recovery: forget finished jobs")
    return adopted


def _started(leaf: Any) -> bool:
    """Whether the leaf's current attempt has a started process on record."""
    handle = current_handle(leaf)
    return handle is not None and bool(handle.pid)


def attempt_started(leaf: Any) -> float:
    """When the leaf's current attempt began: its last move to ``submitting``."""
    for entry in reversed(leaf.history):
        if entry[2] == Status.SUBMITTING.value:
            return float(entry[0])
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


def _roll_back(session: "Session", leaves: list[Any]) -> None:
    def work() -> None:
        for leaf in leaves:
            if leaf.status is Status.SUBMITTING:
                set_status(leaf, Status.NEW,
                           "recovered: the session stopped during submission and the backend "
                           "has no trace of it; submit again", source="recovery")

    session.write(work, note="recovery: roll back interrupted submissions")


def audit_leaks(session: "Session", reap: bool = False) -> list[dict[str, Any]]:
    """List what still holds resources although the repository says it should not.

    Looks at (1) the leak ledger's open entries and (2) every process the backend
    can find with this repository's marker whose (sub)job is final, removed or
    unknown. With ``reap=True`` kills them and marks ledger entries resolved.
    """
    import ray

    from .backends.local.config import Local

    session.refresh()
    actor = session.backends.actor(Local())
    findings: list[dict[str, Any]] = []
    prefix = session.repo_uuid + ":"
    ledger = Ledger(session.main)
    entries = [e for e in ledger.open_entries() if e.handle]
    held = ray.get(actor.held.remote([base.Handle.from_tuple(e.handle) for e in entries])) \
        if entries else []
    resolved: list[tuple[Any, str]] = []
    reap_handles: list[base.Handle] = []
    for entry, still in zip(entries, held):
        if still:
            findings.append({"fqid": entry.fqid, "source": "ledger", "reason": entry.reason,
                             "handle": entry.handle})
            reap_handles.append(base.Handle.from_tuple(entry.handle))
        else:
            resolved.append((entry, "gone"))
    seen = {f["fqid"] for f in findings}
    for handle in ray.get(actor.find.remote(prefix)):
        if handle.fqid in seen:
            continue
        status = _status_of(session, handle.fqid)
        if status is not None:
            handle = dataclasses.replace(handle, workdir=session.jobs.get(handle.fqid).workdir)
        if status is None or status in FINAL or status in (Status.UNKNOWN, Status.REMOVED):
            findings.append({"fqid": handle.fqid, "source": "process",
                             "reason": f"its job is {status.value if status else 'not in the repository'}",
                             "handle": handle.to_tuple()})
            reap_handles.append(handle)
    if reap and reap_handles:
        results = ray.get(actor.kill.remote(reap_handles, 3.0))
        confirmed = {r.fqid for r in results if r.confirmed}
        for finding in findings:
            finding["reaped"] = finding["fqid"] in confirmed
        for entry in entries:
            if entry.fqid in confirmed:
                resolved.append((entry, "reaped"))
    if resolved:
        def work() -> None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            for entry, why in resolved:
                entry.resolved = f"{why} {stamp}"

        session.write(work, note="leak audit")
    return findings


def _status_of(session: "Session", fqid: str) -> Status | None:
    try:
        return session.jobs.get(fqid).status
    except GangaLikeError:
        return None
