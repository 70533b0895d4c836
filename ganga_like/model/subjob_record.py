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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from .component import FrozenList

COMPACT_KEYS = frozenset(("master", "id", "created", "_overrides"))
HEAD = 3  # master, id, created; then the overrides, path and value in turn


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
    """The ``__dict__`` a compact state stands for (the inverse of :func:`compact_state`)."""
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
