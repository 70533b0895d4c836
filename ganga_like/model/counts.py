"""Per-status subjob counts kept on a master, and when its subjobs first and last
reached each of ``j.time``'s stamps; merged on concurrent writes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from persistent import Persistent
from ZODB.POSException import ConflictError

from ..status import master_status


class StatusCounts(Persistent):
    """How many subjobs are in each status.

    Many writers (the monitor, the user's session, other ZEO clients) move
    subjobs of one master at once; each move changes this small record. Rather
    than retrying those transactions, concurrent changes are merged: each side's
    difference from the common ancestor is added up (as ``BTrees.Length`` does).
    The class must be importable where conflicts are resolved (the ZEO server).

    One merge is refused: one that gives the master (``status.master_status``) another
    status than the one recorded. A writer that sees the master move records it (its
    history, the index of jobs by status: ``model.status_index``); when neither writer
    saw a move and the merge makes one (each ended one of the last two running
    subjobs), or only one saw a move and the merge makes another, the later writer
    retries and sees the merged counts. Writers that leave the master's status as they
    found it, the common case, merge as before.
    """

    counts: Mapping[str, int] = {}
    # {stamp name: the earliest / the latest time a subjob reached it} (model.jobtime's
    # names: a master's j.time shows them as Ganga does). Empty in records made before.
    firsts: Mapping[str, float] = {}
    lasts: Mapping[str, float] = {}

    def __init__(self, initial: Mapping[str, int] | None = None) -> None:
        self.counts = {k: v for k, v in (initial or {}).items() if v}

    def move(self, source: str, target: str, n: int = 1, when: float | None = None,
             stamps: Iterable[str] = ()) -> None:
        """Move ``n`` subjobs from ``source`` to ``target``; at ``when`` they reached ``stamps``."""
        if when is not None:
            self._reached(when, stamps)
        counts = dict(self.counts)
        left = counts.get(source, 0) - n
        if left < 0:
            raise ValueError(f"no subjob counted as {source!r} to move to {target!r}")
        if left:
            counts[source] = left
        else:
            counts.pop(source, None)
        counts[target] = counts.get(target, 0) + n
        self.counts = counts

    def add(self, status: str, n: int = 1) -> None:
        counts = dict(self.counts)
        counts[status] = counts.get(status, 0) + n
        self.counts = counts

    def total(self) -> int:
        return sum(self.counts.values())

    def _reached(self, when: float, stamps: Iterable[str]) -> None:
        # Copied and assigned only when a stamp moves (every change of every subjob comes
        # here: the latest times move at almost each, the earliest rarely).
        firsts: dict[str, float] | None = None
        lasts: dict[str, float] | None = None
        for name in stamps:
            first = self.firsts.get(name)
            if first is None or when < first:
                firsts = dict(self.firsts) if firsts is None else firsts
                firsts[name] = when
            last = self.lasts.get(name)
            if last is None or when > last:
                lasts = dict(self.lasts) if lasts is None else lasts
                lasts[name] = when
        if firsts is not None:
            self.firsts = firsts
        if lasts is not None:
            self.lasts = lasts

    def _p_resolveConflict(self, old: dict | None, committed: dict, new: dict) -> dict:
        base = (old or {}).get("counts", {})
        ours, theirs = new.get("counts", {}), committed.get("counts", {})
        merged = {}
        for key in set(base) | set(ours) | set(theirs):
            value = theirs.get(key, 0) + ours.get(key, 0) - base.get(key, 0)
            if value < 0:
                raise ConflictError("status counts would go negative")
            if value:
                merged[key] = value
        if _unrecorded_move(base, ours, theirs, merged):
            raise ConflictError("the merged counts move the master as neither writer did")
        resolved = dict(committed)
        resolved["counts"] = merged
        for name, pick in (("firsts", min), ("lasts", max)):
            mine, other = new.get(name, {}), committed.get(name, {})
            if mine or other:
                resolved[name] = {k: pick(v for v in (mine.get(k), other.get(k)) if v is not None)
                                  for k in set(mine) | set(other)}
        return resolved



def _unrecorded_move(base: Mapping[str, int], ours: Mapping[str, int], theirs: Mapping[str, int],
                     merged: Mapping[str, int]) -> bool:
    """Whether the merge gives the master a status other than the one recorded: each writer
    that saw the master move recorded the move (history, index); none did, or one did."""
    before = master_status(base)
    movers = [after for after in (master_status(ours), master_status(theirs)) if after is not before]
    if len(movers) == 2:
        return False  # both wrote the master's own record: that conflict is ZODB's
    recorded = movers[0] if movers else before
    return master_status(merged) is not recorded
