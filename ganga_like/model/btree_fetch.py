"""Many keys of a BTree, loaded a level at a time (over ZEO: a round of requests per
level, not one request per bucket).

``tree.get(k)`` for 100 scattered keys of a 100,000-entry ``IOBTree`` loads about 100
buckets one after the other; over ZEO each is a round trip (measured: 63 ms for a
select of 100 subjobs among 10,000 through the service). Here the tree's nodes are
read from their pickled state (BTrees' stable format: ``None`` when empty,
``((items,),)`` for one inline bucket, else ``((child0, key1, child1, ...),
firstbucket)``), the children holding wanted keys are asked for together with the
connection's ``prefetch``, and only then are the keys read, from the cache.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

V = TypeVar("V", covariant=True)
T = TypeVar("T")


class Tree(Protocol[V]):
    """A BTree with integer keys (``IOBTree``)."""

    _p_jar: object

    def get(self, key: int) -> V | None: ...

    def values(self, min: int | None = None, max: int | None = None) -> Iterable[V]: ...  # noqa: A002

    def __getstate__(self) -> object: ...


def fetch(tree: Tree[T], keys: Sequence[int]) -> list[T | None]:
    """``[tree.get(k) for k in keys]``, each level of the tree prefetched at once, and
    then the values (persistent ones not loaded yet: the jobs)."""
    prefetch = getattr(tree._p_jar, "prefetch", None)
    if prefetch is not None and keys:
        level: list[tuple[object, Sequence[int]]] = [(tree, keys)]
        while level:
            wanted: list[tuple[object, list[int]]] = []
            for node, node_keys in level:
                wanted.extend(_children(node, node_keys))
            _prefetch_ghosts(prefetch, (child for child, _ in wanted))
            level = [(child, ks) for child, ks in wanted if isinstance(child, type(tree))]
    found = [tree.get(key) for key in keys]
    if prefetch is not None:
        _prefetch_ghosts(prefetch, found)  # the values too, when they are persistent
    return found


def _prefetch_ghosts(prefetch: Callable[[list[object]], None], objects: Iterable[object]) -> None:
    ghosts = [obj for obj in objects if getattr(obj, "_p_changed", 0) is None]
    if ghosts:
        prefetch(ghosts)


def prefetch_ghosts(jar: object, objects: Iterable[object]) -> None:
    """Ask for those of ``objects`` not loaded yet in one round (over ZEO; a storage
    without ``prefetch``, as a FileStorage read in place, loads each when it is read)."""
    prefetch = getattr(jar, "prefetch", None)
    if prefetch is not None:
        _prefetch_ghosts(prefetch, objects)


def _children(node: object, keys: Sequence[int]) -> list[tuple[object, list[int]]]:
    """The children of an inner node that hold ``keys``, each with its keys."""
    state = node.__getstate__()
    if not isinstance(state, tuple) or len(state) != 2:  # empty, or one bucket inline: nothing below
        return []
    entries = state[0]
    children, separators = entries[0::2], entries[1::2]
    by_child: dict[int, list[int]] = {}
    for key in keys:
        by_child.setdefault(bisect_right(separators, key), []).append(key)
    return [(children[i], ks) for i, ks in sorted(by_child.items())]
