"""The leak audit: what still holds a resource although the repository says it should not.

Two sources of findings: (1) the leak ledger's open entries (forced removals, relaxed
kills), each asked of the backend that made its handle; (2) what every backend with
work here finds carrying this repository's marker whose (sub)job is final, removed or
unknown. ``reap=True`` asks that same backend to kill each finding, and resolves the
ledger entries it confirms. An entry whose backend cannot be asked stays open and is
listed, with why.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from ..backends import base
from ..errors import GangaLikeError
from ..ray_runtime import import_ray
from ..repository.ledger import Ledger
from ..status import FINAL, Status
from .backend_pool import backend_named
from .context import EngineContext

log = logging.getLogger(__name__)

BackendKey = tuple  # a backend pool key: (backend name, its settings that choose the actor...)


@dataclasses.dataclass
class Finding:
    """One leak: what holds a resource, where it was found, and who can reap it."""

    fqid: str
    source: str  # "ledger" or "process"
    reason: str
    handle: tuple  # the handle as stored (base.Handle.to_tuple)
    backend: str
    reaper: BackendKey | None  # the backend that can kill it (None: none can be asked)
    reaped: bool | None = None  # after a reap: whether its backend confirmed the kill

    def as_dict(self) -> dict[str, Any]:
        """The finding as clients and ``ganga-like leaks --json`` show it."""
        shown: dict[str, Any] = {"fqid": self.fqid, "source": self.source, "reason": self.reason,
                                 "handle": self.handle, "backend": self.backend}
        if self.reaped is not None:
            shown["reaped"] = self.reaped
        return shown


@dataclasses.dataclass
class _LedgerAnswer:
    findings: list[Finding]
    gone: list[Any]  # entries whose process their backend says is gone
    reaper_of: dict[int, BackendKey]  # id(entry) -> the backend that holds it
    entries: list[Any]


def audit_leaks(ctx: EngineContext, reap: bool = False) -> list[dict[str, Any]]:
    """Every leak, as dicts (see :class:`Finding`); ``reap``: kill them too."""
    ctx.store.refresh()
    backends = _AuditBackends(ctx)
    ledger = _ledger_findings(ctx, backends)
    findings = ledger.findings + _process_findings(ctx, backends, {f.fqid for f in ledger.findings})
    resolved = [(entry, "gone") for entry in ledger.gone]
    if reap:
        confirmed = _reap(backends, findings)
        resolved += [(entry, "reaped") for entry in ledger.entries
                     if (ledger.reaper_of.get(id(entry)), entry.fqid) in confirmed]
    if resolved:
        def work() -> None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            for entry, why in resolved:
                entry.resolved = f"{why} {stamp}"

        ctx.store.write(work, note="leak audit")
    return [finding.as_dict() for finding in findings]


def _ledger_findings(ctx: EngineContext, backends: _AuditBackends) -> _LedgerAnswer:
    """(1) The ledger's open entries, each asked of its own backend whether it still holds."""
    entries = [e for e in Ledger(ctx.store.main).open_entries() if e.handle]
    asked: dict[BackendKey, list[Any]] = {}
    for entry in entries:
        try:
            key = backends.add(ledger_backend(entry))
        except GangaLikeError as exc:  # a record naming no backend this version knows
            key = backends.unusable((entry.backend_name() or "?", "unknown"), str(exc))
        asked.setdefault(key, []).append(entry)
    answers = backends.call_each(
        {key: ("held", [base.Handle.from_tuple(e.handle) for e in group]) for key, group in asked.items()})
    answer = _LedgerAnswer([], [], {}, entries)
    for key, group in asked.items():
        held, error = answers[key]
        for entry, still in zip(group, held if error is None else [None] * len(group), strict=True):
            finding = Finding(entry.fqid, "ledger", entry.reason, entry.handle, key[0], reaper=None)
            if error is not None:
                finding.reason += f" (not checked: its backend {key[0]} cannot be asked: {error})"
                answer.findings.append(finding)
            elif still:
                finding.reaper = key
                answer.findings.append(finding)
                answer.reaper_of[id(entry)] = key
            else:
                answer.gone.append(entry)
    return answer


def _process_findings(ctx: EngineContext, backends: _AuditBackends, seen: set[str]) -> list[Finding]:
    """(2) Marked work whose job says it should hold nothing, as each backend finds it."""
    for top in _active_tops(ctx):
        backends.add(top.backend)
    backends.add(backend_named("Local"))  # Local sees every marked process on this machine
    backends.add_pool()
    found = backends.call_each({key: ("find", ctx.store.repo_uuid + ":") for key in backends.keys()})
    by_fqid: dict[str, dict[BackendKey, base.Handle]] = {}
    for key, (handles, error) in found.items():
        if error is not None:
            log.warning("leak audit: %s could not list its work: %s", key[0], error)
            continue
        for handle in handles:
            by_fqid.setdefault(handle.fqid, {}).setdefault(key, handle)
    findings = []
    for fqid, seen_by in sorted(by_fqid.items()):
        job = None if fqid in seen else _job_of(ctx, fqid)
        status = job.status if job is not None else None
        if fqid in seen or status is not None and status not in FINAL \
                and status not in (Status.UNKNOWN, Status.REMOVED):
            continue
        # Reaped by the backend that ran it when that one sees it, else by the first finder.
        owner = backends.key_of((job.master or job).backend) if job is not None else None
        key = owner if owner in seen_by else next(iter(seen_by))
        handle = seen_by[key]
        if job is not None:
            handle = dataclasses.replace(handle, workdir=job.workdir)
        reason = f"its job is {status.value if status else 'not in the repository'}"
        findings.append(Finding(fqid, "process", reason, handle.to_tuple(), key[0], reaper=key))
    return findings


def _reap(backends: _AuditBackends, findings: list[Finding]) -> set[tuple[BackendKey, str]]:
    """Kill every finding through its reaper; mark each; return the confirmed (key, fqid)."""
    by_key: dict[BackendKey, list[base.Handle]] = {}
    for finding in findings:
        if finding.reaper is not None:
            by_key.setdefault(finding.reaper, []).append(base.Handle.from_tuple(finding.handle))
    if not by_key:
        return set()
    killed = backends.call_each({key: ("kill", handles, 3.0) for key, handles in by_key.items()})
    confirmed = {(key, r.fqid) for key, (results, error) in killed.items() if error is None
                 for r in results if r.confirmed}
    for key, (_, error) in killed.items():
        if error is not None:
            log.warning("leak audit: %s could not reap: %s", key[0], error)
    for finding in findings:
        finding.reaped = finding.reaper is not None and (finding.reaper, finding.fqid) in confirmed
    return confirmed


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
        self.actors: dict[BackendKey, Any] = {}
        self.errors: dict[BackendKey, str] = {}

    def key_of(self, config: Any) -> BackendKey | None:
        try:
            return config.actor_key()
        except Exception:  # a damaged config: it has no actor to ask
            return None

    def add(self, config: Any) -> BackendKey:
        key = self.key_of(config) or (type(config).__name__, "unusable config")
        if key not in self.actors and key not in self.errors:
            try:
                self.actors[key] = self.ctx.backends.actor(config)
            except Exception as exc:  # an unreachable cluster, a config this session cannot use
                self.errors[key] = f"{type(exc).__name__}: {exc}"
        return key

    def unusable(self, key: BackendKey, error: str) -> BackendKey:
        self.errors.setdefault(key, error)
        return key

    def add_pool(self) -> None:
        """The actors this service already has (they may hold work of removed jobs)."""
        for key, actor in self.ctx.backends.items():
            self.actors.setdefault(key, actor)

    def keys(self) -> list[BackendKey]:
        return list(self.actors) + [k for k in self.errors if k not in self.actors]

    def call_each(self, calls: dict[BackendKey, tuple]) -> dict[BackendKey, tuple[Any, str | None]]:
        """Call ``method(*args)`` on each key's actor at once; per key: (answer, error)."""
        ray = import_ray()
        pending = {}
        answers: dict[BackendKey, tuple[Any, str | None]] = {}
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
