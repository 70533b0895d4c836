"""A fresh subjob's record in a compact form: the fewest objects to pickle.

A subjob that ``split()`` has just made holds four values: its master, its id, its
'new' time and the splitter's overrides. Stored as ZODB's usual state (a dict of
field names, a dict of overrides, each argument list through its ``__reduce__``),
its pickle is some two dozen objects, and committing 100,000 of them costs more in
the pickler than anything else ``submit()`` does. The compact form is one flat
tuple::

    (master, id, created, path1, value1, path2, value2, ...)

with an override that is a :class:`FrozenList` kept as the plain tuple of its items
(it reads back as a ``FrozenList``, the type the field's check gave it).

A subjob's state is written compact only when it holds nothing else and no override
is a plain tuple (which would read back as a ``FrozenList``); any other state is
ZODB's usual dict. The first change of status (``begin_attempt``) rewrites the record
in the usual form. Both forms load: records written before this form existed are
dicts. A tuple of two is ZODB's own ``(dict, slots)`` form, never written for a Job;
a compact state has three items or more.

A subjob past its split (a status, a history, a handle: what the streamer and the
monitor write at each of its changes) is stored *packed*::

    (master, id, created, packed)

``packed`` being the pickle of the rest of its state, made by the standard pickler
alone. ZODB's pickler calls its ``persistent_id`` hook (Python) for every object of a
record, some sixty for a finished subjob's history and handle, and that was most of
what the monitor spent per change (issue 22): a record of plain values (strings,
numbers, tuples, the frozen lists and dicts of overrides) holds nothing for the hook
to find but the master, which stays outside. A state holding a key not known to be
plain, or an override that is not a plain value, is ZODB's usual dict. The packed
form has one item after the head; the fresh form an even number.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import cast

from .component import FrozenDict, FrozenList

COMPACT_KEYS = frozenset(("master", "id", "created", "_overrides"))
_HEAD_KEYS = frozenset(("master", "id", "created"))
HEAD = 3  # master, id, created; then the overrides, path and value in turn
# What a subjob's state may hold to be packed: values ganga_like makes of plain data
# (statuses, history entries, handles, notes, counters); anything else keeps the dict.
PACKED_KEYS = frozenset(("_overrides", "_status", "history", "submit_counter",
                         "auto_resubmit_count", "backend_detail", "backend_note", "handle",
                         "exit_code", "reason", "name", "comment", "monitored"))
PACKED_PROTOCOL = 4  # the standard pickler's; each record says its own protocol
_SCALARS = frozenset((str, int, float, bool, type(None), bytes))


def record_state(state: Mapping[str, object]) -> tuple | None:
    """A subjob's state as its record holds it: the fresh form, else the packed form,
    else None (ZODB's usual dict)."""
    return compact_state(state) or packed_state(state)


def packed_state(state: Mapping[str, object]) -> tuple | None:
    """The packed form of a subjob's ``state``, or None when it holds anything not known
    to be plain (then it is stored as a dict)."""
    master = state.get("master")
    if master is None:
        return None  # a top-level job
    rest = dict(state)
    for key in _HEAD_KEYS:
        rest.pop(key, None)
    if not rest.keys() <= PACKED_KEYS:
        return None
    overrides = cast(Mapping[str, object], rest.get("_overrides") or {})
    if not all(_plain(value) for value in overrides.values()):
        return None
    return (master, state.get("id"), state.get("created"),
            pickle.dumps(rest, protocol=PACKED_PROTOCOL))


def _plain(value: object) -> bool:
    """Whether an override is plain data (a scalar, or a frozen list or dict of them)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is FrozenList or kind is tuple:
        return not value or all(type(item) in _SCALARS for item in cast(tuple, value))
    if kind is FrozenDict:
        items = cast(dict, value).items()
        return all(type(k) in _SCALARS and type(v) in _SCALARS for k, v in items)
    return False


def compact_state(state: Mapping[str, object]) -> tuple | None:
    """The compact form of a subjob's ``state`` (its ``__dict__``), or None when it
    holds more than a fresh subjob does (it is then stored as a dict)."""
    if len(state) > len(COMPACT_KEYS) or state.get("master") is None \
            or not state.keys() <= COMPACT_KEYS:
        return None  # (a top-level job's state is refused by its size alone)
    overrides: Mapping[str, object] = state.get("_overrides") or {}  # type: ignore[assignment]
    flat: tuple = (state["master"], state.get("id"), state.get("created"))
    for path, value in overrides.items():
        kind = type(value)
        if kind is tuple:
            return None  # it would read back as a FrozenList: kept as a dict
        flat += (path, tuple(cast(FrozenList, value)) if kind is FrozenList else value)
    return flat


def expanded_state(compact: tuple) -> dict[str, object]:
    """The ``__dict__`` a compact or packed state stands for (the inverse of
    :func:`record_state`)."""
    if len(compact) == HEAD + 1:  # packed: (master, id, created, packed)
        unpacked: dict[str, object] = pickle.loads(compact[HEAD])
        unpacked["master"] = compact[0]
        for key, value in zip(("id", "created"), compact[1:HEAD], strict=True):
            if value is not None:
                unpacked[key] = value
        return unpacked
    overrides = {path: FrozenList(value) if type(value) is tuple else value
                 for path, value in zip(compact[HEAD::2], compact[HEAD + 1::2], strict=True)}
    state: dict[str, object] = {"master": compact[0], "_overrides": overrides}
    if compact[1] is not None:
        state["id"] = compact[1]
    if compact[2] is not None:
        state["created"] = compact[2]
    return state


def is_compact(state: object) -> bool:
    """Whether a loaded state is the compact form (ZODB's own tuple form has two items)."""
    return type(state) is tuple and len(state) >= HEAD
