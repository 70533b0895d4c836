"""A list or dict attribute as it is read: one whose in-place edits are assignments.

Ganga's list attributes (``GangaList``) take ``j.application.args.append('x')``,
``j.inputfiles += [...]`` and ``args[0] = 'y'``; its dicts take ``app.env['X'] = '1'``.
What a record stores stays immutable (a tuple, a dict set anew: see ``component``'s
rules for persistent classes), so an edit made in place could be neither saved nor
checked. A :class:`BoundList` (:class:`BoundDict`) is what reading such an attribute
gives: each edit builds the new value and assigns it to the attribute it was read from,
with every check of an assignment (the value's form, a submitted job's read-only rule),
committed as an assignment is; refused, nothing changes, the list included. It pickles
and deep-copies as a plain tuple (dict) of its items, never with its owner.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import SupportsIndex, TypeVar

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


def plain(value: object) -> object:
    """Lists and tuples, nested ones included, as lists: how list attributes compare."""
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


class ComparesAsList:
    """Equal to a list or tuple with equal items, nested ones included, as GangaList is:
    ``Executable(args=['a']).args == ['a'] == ('a',)``."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple)):
            return plain(self) == plain(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal


class BoundList(ComparesAsList, list[T]):
    """The items of a stored list attribute; ``assign(new_items)`` stores a new value and
    ``read()`` gives the stored value back (as converted by the attribute's check)."""

    def __init__(self, items: Iterable[T], assign: Callable[[list[T]], None],
                 read: Callable[[], Iterable[T]]) -> None:
        super().__init__(items)
        self._assign = assign
        self._read = read

    def _edit(self, edit: Callable[[list[T]], R]) -> R:
        new = list(self)
        result = edit(new)
        self._assign(new)  # raises before anything is stored if the value is refused
        super().clear()
        super().extend(self._read())  # as stored: '5' for 5
        return result

    def append(self, item: T) -> None:
        self._edit(lambda new: new.append(item))

    def extend(self, items: Iterable[T]) -> None:
        added = list(items)
        self._edit(lambda new: new.extend(added))

    def insert(self, index: SupportsIndex, item: T) -> None:
        self._edit(lambda new: new.insert(index, item))

    def remove(self, item: T) -> None:
        self._edit(lambda new: new.remove(item))

    def pop(self, index: SupportsIndex = -1) -> T:
        return self._edit(lambda new: new.pop(index))

    def clear(self) -> None:
        self._edit(lambda new: new.clear())

    def sort(self, *, key: Callable[[T], object] | None = None,  # type: ignore[override]
             reverse: bool = False) -> None:
        self._edit(lambda new: new.sort(key=key, reverse=reverse))  # type: ignore[arg-type]

    def reverse(self) -> None:
        self._edit(lambda new: new.reverse())

    def __setitem__(self, index: SupportsIndex | slice, value: object) -> None:  # type: ignore[override]
        self._edit(lambda new: new.__setitem__(index, value))  # type: ignore[index,arg-type,assignment]

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        self._edit(lambda new: new.__delitem__(index))

    def __iadd__(self, items: Iterable[T]) -> BoundList[T]:  # type: ignore[override,misc]
        self.extend(items)
        return self

    def __imul__(self, times: SupportsIndex) -> BoundList[T]:  # type: ignore[misc]
        self._edit(lambda new: new.__imul__(times))
        return self

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type, tuple[tuple[T, ...]]]:
        return (tuple, (tuple(self),))

    def __copy__(self) -> list[T]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, object]) -> tuple[T, ...]:
        return tuple(copy.deepcopy(list(self), memo))


class BoundDict(dict[K, V]):
    """The items of a stored dict attribute (``app.env``), as :class:`BoundList` is for
    lists: ``env['X'] = '1'``, ``update``, ``pop``, ``del``, ``|=`` are assignments."""

    def __init__(self, items: Mapping[K, V], assign: Callable[[dict[K, V]], None],
                 read: Callable[[], Mapping[K, V]]) -> None:
        super().__init__(items)
        self._assign = assign
        self._read = read

    def _edit(self, edit: Callable[[dict[K, V]], R]) -> R:
        new = dict(self)
        result = edit(new)
        self._assign(new)  # raises before anything is stored if the value is refused
        super().clear()
        super().update(self._read())
        return result

    def __setitem__(self, key: K, value: V) -> None:
        self._edit(lambda new: new.__setitem__(key, value))

    def __delitem__(self, key: K) -> None:
        self._edit(lambda new: new.__delitem__(key))

    def update(self, *args: object, **kwargs: V) -> None:  # type: ignore[override]
        self._edit(lambda new: new.update(*args, **kwargs))  # type: ignore[call-overload]

    def pop(self, key: K, *default: V) -> V:  # type: ignore[override]
        return self._edit(lambda new: new.pop(key, *default))

    def popitem(self) -> tuple[K, V]:
        return self._edit(lambda new: new.popitem())

    def setdefault(self, key: K, default: V) -> V:  # type: ignore[override]
        return self._edit(lambda new: new.setdefault(key, default))

    def clear(self) -> None:
        self._edit(lambda new: new.clear())

    def __ior__(self, other: Mapping[K, V]) -> BoundDict[K, V]:  # type: ignore[override,misc]
        self._edit(lambda new: new.update(other))
        return self

    def __reduce__(self) -> tuple[type, tuple[dict[K, V]]]:
        return (dict, (dict(self),))

    def __copy__(self) -> dict[K, V]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, object]) -> dict[K, V]:
        return copy.deepcopy(dict(self), memo)
