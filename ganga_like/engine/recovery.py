"""After a restart: adopt what an earlier session left running; audit leaks.

Only jobs in the repository's ``active_ids`` set are looked at, so starting a
session costs nothing for finished jobs, however many are stored.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

from ..backends import base
from ..backends.runtime import status_file as sf
from ..errors import GangaLikeError
from ..model.lifecycle import set_status
from ..ray_runtime import import_ray
from ..repository.ledger import Ledger
from ..status import ACTIVE, FINAL, Status, history_entries
from .backend_pool import backend_named
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


def audit_leaks(ctx: EngineContext, reap: bool = False) -> list[dict[str, Any]]:
    """List what still holds resources although the repository says it should not.

    Looks at (1) the leak ledger's open entries, each asked of the backend that made
    its handle (the entry's backend config, through the pool), and (2) what every
    backend with work here (those of active jobs and of open entries, the actors this
    service has, and Local, which sees every marked process on this machine) finds with
    this repository's marker whose (sub)job is final, removed or unknown. With
    ``reap=True`` each is killed by that same backend, and ledger entries it confirms
    are marked resolved. An entry whose backend cannot be asked stays open and is listed.
    """
    ctx.store.refresh()
    prefix = ctx.store.repo_uuid + ":"
    backends = _AuditBackends(ctx)
    findings: list[dict[str, Any]] = []
    finding_keys: list[tuple | None] = []  # per finding: the backend that reaps it (None: none can)
    reap_by: dict[tuple, list[base.Handle]] = {}
    resolved: list[tuple[Any, str]] = []

    # (1) The ledger: each entry asked of its own backend.
    entries = [e for e in Ledger(ctx.store.main).open_entries() if e.handle]
    asked: dict[tuple, list[Any]] = {}
    for entry in entries:
        try:
            key = backends.add(ledger_backend(entry))
        except GangaLikeError as exc:  # a record naming no backend this version knows
            key = backends.unusable((entry.backend_name() or "?", "unknown"), str(exc))
        asked.setdefault(key, []).append(entry)
    answers = backends.call_each(
        {key: ("held", [base.Handle.from_tuple(e.handle) for e in group]) for key, group in asked.items()})
    entry_key: dict[int, tuple] = {}
    for key, group in asked.items():
        held, error = answers[key]
        for entry, still in zip(group, held if error is None else [None] * len(group)):
            finding = {"fqid": entry.fqid, "source": "ledger", "reason": entry.reason,
                       "handle": entry.handle, "backend": key[0]}
            if error is not None:
                finding["reason"] += f" (not checked: its backend {key[0]} cannot be asked: {error})"
                findings.append(finding)
                finding_keys.append(None)
            elif still:
                findings.append(finding)
                finding_keys.append(key)
                reap_by.setdefault(key, []).append(base.Handle.from_tuple(entry.handle))
                entry_key[id(entry)] = key
            else:
                resolved.append((entry, "gone"))
    seen = {f["fqid"] for f in findings}

    # (2) Marked work whose job says it should hold nothing, as each backend finds it.
    for top in _active_tops(ctx):
        backends.add(top.backend)
    backends.add(backend_named("Local"))
    backends.add_pool()
    found = backends.call_each({key: ("find", prefix) for key in backends.keys()})
    by_fqid: dict[str, dict[tuple, base.Handle]] = {}
    for key, (handles, error) in found.items():
        if error is not None:
            log.warning("leak audit: %s could not list its work: %s", key[0], error)
            continue
        for handle in handles:
            by_fqid.setdefault(handle.fqid, {}).setdefault(key, handle)
    for fqid, seen_by in sorted(by_fqid.items()):
        if fqid in seen:
            continue
        job = _job_of(ctx, fqid)
        status = job.status if job is not None else None
        if status is not None and status not in FINAL and status not in (Status.UNKNOWN, Status.REMOVED):
            continue
        # Reaped by the backend that ran it when that one sees it, else by the first finder.
        owner = backends.key_of((job.master or job).backend) if job is not None else None
        key = owner if owner in seen_by else next(iter(seen_by))
        handle = seen_by[key]
        if job is not None:
            handle = dataclasses.replace(handle, workdir=job.workdir)
        findings.append({"fqid": fqid, "source": "process",
                         "reason": f"its job is {status.value if status else 'not in the repository'}",
                         "handle": handle.to_tuple(), "backend": key[0]})
        finding_keys.append(key)
        reap_by.setdefault(key, []).append(handle)

    if reap and reap_by:
        killed = backends.call_each({key: ("kill", handles, 3.0) for key, handles in reap_by.items()})
        confirmed = {(key, r.fqid) for key, (results, error) in killed.items() if error is None
                     for r in results if r.confirmed}
        for key, (_, error) in killed.items():
            if error is not None:
                log.warning("leak audit: %s could not reap: %s", key[0], error)
        for finding, reaper in zip(findings, finding_keys):
            finding["reaped"] = reaper is not None and (reaper, finding["fqid"]) in confirmed
        for entry in entries:
            by = entry_key.get(id(entry))
            if by is not None and (by, entry.fqid) in confirmed:
                resolved.append((entry, "reaped"))
    if resolved:
        def work() -> None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            for entry, why in resolved:
                entry.resolved = f"{why} {stamp}"

        ctx.store.write(work, note="leak audit")
    return findings


def ledger_backend(entry: Any) -> Any:
    """The backend config that made a ledger entry's handle: the copy the entry keeps, or
    (a record written before it was kept) the default config of the backend the handle names."""
    if entry.backend_config is not None:
        return entry.backend_config
    return backend_named(entry.backend_name())


class _AuditBackends:
    """The backends the audit asks, by pool key, with their actors (or why there is none)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.actors: dict[tuple, Any] = {}
        self.errors: dict[tuple, str] = {}

    def key_of(self, config: Any) -> tuple | None:
        try:
            return config.actor_key()
        except Exception:  # a damaged config: it has no actor to ask
            return None

    def add(self, config: Any) -> tuple:
        key = self.key_of(config) or (type(config).__name__, "unusable config")
        if key not in self.actors and key not in self.errors:
            try:
                self.actors[key] = self.ctx.backends.actor(config)
            except Exception as exc:  # an unreachable cluster, a config this session cannot use
                self.errors[key] = f"{type(exc).__name__}: {exc}"
        return key

    def unusable(self, key: tuple, error: str) -> tuple:
        self.errors.setdefault(key, error)
        return key

    def add_pool(self) -> None:
        """The actors this service already has (they may hold work of removed jobs)."""
        for key, actor in self.ctx.backends.items():
            self.actors.setdefault(key, actor)

    def keys(self) -> list[tuple]:
        return list(self.actors) + [k for k in self.errors if k not in self.actors]

    def call_each(self, calls: dict[tuple, tuple]) -> dict[tuple, tuple[Any, str | None]]:
        """Call ``method(*args)`` on each key's actor at once; per key: (answer, error)."""
        ray = import_ray()
        pending = {}
        answers: dict[tuple, tuple[Any, str | None]] = {}
        for key, (method, *args) in calls.items():
            if key in self.errors:
                answers[key] = (None, self.errors[key])
            else:
                pending[key] = getattr(self.actors[key], method).remote(*args)
        for key, ref in pending.items():
            try:
                answers[key] = (ray.get(ref), None)
            except Exception as exc:  # the actor died meanwhile: its entries stay open
                answers[key] = (None, f"{type(exc).__name__}: {exc}")
        return answers


def _active_tops(ctx: EngineContext) -> list[Any]:
    tops = []
    for top_id in list(getattr(ctx.store.main.root, "active_ids", None) or ()):
        try:
            tops.append(ctx.store.jobs.get(top_id))
        except GangaLikeError:
            continue
    return [top for top in tops if top.backend is not None]


def _job_of(ctx: EngineContext, fqid: str) -> Any:
    try:
        return ctx.store.jobs.get(fqid)
    except GangaLikeError:
        return None
