"""Why a host cannot serve a waiting subjob, counted the way ``condor_q -analyze`` counts.

Pure. :func:`unfit` names what keeps a host from a metahost entry for good (a label it
lacks, an atomic group, an "only if needed" label); :func:`counts` sums every host of a
scope by its reason in one line: ``of 5 hosts: 2 lack label gpu, 1 is Repair Failed,
2 hold subjobs 3.1 and 3.2``. The scheduler (``scheduler.py``) puts that line in a
:class:`~ganga_like.backends.hosts.scheduler.Wait`; the actor sends it as the subjob's
note. The types are the scheduler's, seen through the protocols below (the scheduler
imports this module, not the other way round).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

SHOWN_HOLDERS = 3  # subjobs named in one line; more are counted


class HostView(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> frozenset[str]: ...
    @property
    def status(self) -> str: ...
    @property
    def locked(self) -> bool: ...
    @property
    def holder(self) -> str: ...


class LabelView(Protocol):
    @property
    def only_if_needed(self) -> bool: ...
    @property
    def atomic_group(self) -> str | None: ...


class EntryView(Protocol):
    @property
    def metahost(self) -> str | None: ...
    @property
    def dependencies(self) -> frozenset[str]: ...
    @property
    def atomic_group(self) -> str | None: ...
    @property
    def hosts(self) -> tuple[str, ...]: ...
    @property
    def fits(self) -> frozenset[str] | None: ...
    @property
    def needs(self) -> str: ...


class RoundView(Protocol):
    @property
    def labels(self) -> Mapping[str, LabelView]: ...
    def available(self, host: HostView) -> bool: ...  # type: ignore[empty-body]
    def holder(self, host: HostView) -> str: ...  # type: ignore[empty-body]


def unfit(inv: RoundView, entry: EntryView, host: HostView) -> str:
    """What keeps ``host`` from a metahost (or label-less) entry whatever its status, as a
    count's phrase ('' if nothing does). Explicitly named hosts are checked elsewhere."""
    if entry.metahost and entry.metahost not in host.labels:
        return f"lack label {entry.metahost}"
    missing = sorted(entry.dependencies - host.labels)
    if missing:
        return f"lack label {', '.join(missing)}"
    if entry.fits is not None and host.name not in entry.fits:
        return f"are too small for {entry.needs}"
    for name in sorted(host.labels):
        label = inv.labels.get(name)
        if label is None:
            continue
        if label.atomic_group is not None and not entry.atomic_group:
            return f"are in atomic group {label.atomic_group}"
        if label.only_if_needed and name not in entry.dependencies and name != entry.metahost:
            return f"are only if needed ({name})"
    return ""


def _reason(inv: RoundView, entry: EntryView, host: HostView, check_fit: bool) -> str:
    problem = unfit(inv, entry, host) if check_fit else ""
    if problem:
        return problem
    if host.locked:
        return "are locked (failed verify a moment ago)"
    holder = inv.holder(host)
    if holder:
        return "hold subjobs"
    if inv.available(host):
        return "are Ready"
    return f"are {host.status}"


_SINGULAR = {"lack": "lacks", "are": "is"}


def _phrase(reason: str, count: int, holders: list[str]) -> str:
    if reason == "hold subjobs":
        named = holders[:SHOWN_HOLDERS]
        text = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
        if len(holders) > SHOWN_HOLDERS:
            text = f"{', '.join(named)} and {len(holders) - SHOWN_HOLDERS} more"
        return f"{count} hold{'s' if count == 1 else ''} subjob{'' if len(holders) == 1 else 's'} {text}"
    if count == 1:
        verb, _, rest = reason.partition(" ")
        return f"1 {_SINGULAR.get(verb, verb)} {rest}"
    return f"{count} {reason}"


def counts(inv: RoundView, entry: EntryView, hosts: Iterable[HostView], total: bool = True) -> str:
    """``of 5 hosts: 2 lack label gpu, 1 is Repair Failed, 2 hold subjobs 3.1 and 3.2``
    (``total=False``: without the ``of N hosts:`` head). Explicit hosts (not metahost
    entries) are counted by status only."""
    check_fit = not entry.hosts
    tally: dict[str, int] = {}
    holders: list[str] = []
    number = 0
    for host in hosts:
        number += 1
        reason = _reason(inv, entry, host, check_fit)
        tally[reason] = tally.get(reason, 0) + 1
        if reason == "hold subjobs":
            holder = inv.holder(host)
            if holder not in holders:
                holders.append(holder)
    body = ", ".join(_phrase(reason, count, holders) for reason, count in tally.items()) or "none"
    return f"of {number} host{'' if number == 1 else 's'}: {body}" if total else body
