"""Persistent configuration objects with declared, validated fields.

Applications, splitters, backend configs, postprocessors and files are all
``Component`` subclasses. Each declares its fields once (name, default, check,
help); assigning a bad value raises ``InvalidValue`` naming the expected form at
the moment it is set, not later at submission.

Rules for persistent classes (ZODB): every field has a class-level default, so
records written by an older version load with the new attribute's default; the
values stored are immutable (tuples, not lists; a fresh dict on every set), so
changing a field is always an attribute assignment that marks the record dirty.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from persistent import Persistent

from ..errors import InvalidValue, NoSuchAttribute, ReadOnlyAttribute, UnknownAttribute
from .bound import BoundDict, BoundList, ComparesAsList

Check = Callable[[Any], Any]


class Field:
    """A declared attribute of a Component: default, conversion/check, and help."""

    def __init__(self, default: Any, check: Check | None, expected: str, doc: str = "") -> None:
        self.default = default
        self.check = check
        self.expected = expected
        self.doc = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        # __dict__ does not unghostify a persistent object: activate it first.
        obj._p_activate()
        value = obj.__dict__.get(self.name, self.default)
        # A list (stored as a tuple) or dict attribute: read as one whose in-place edits
        # are assignments to this field, checked and saved as one (model.bound).
        bound = BoundList if isinstance(value, tuple) else BoundDict if isinstance(value, dict) else None
        if bound is None:
            return value
        return bound(value, lambda new: setattr(obj, self.name, new),
                     lambda: obj.__dict__.get(self.name, self.default))

    def __set__(self, obj: Any, value: Any) -> None:
        # Reached from Component.__setattr__ through assign_declared, not through
        # persistent's __setattr__: every check comes before the object is marked changed.
        obj._check_writable(self.name)
        converted = self.convert(type(obj).__name__, value)

        def change() -> None:
            obj._p_activate()
            obj.__dict__[self.name] = converted
            self.attach(obj, converted)
            obj._p_changed = True

        from . import binding

        binding.apply(obj, change, converted)

    def attach(self, obj: Any, value: Any) -> None:
        """Called inside the change (the same transaction) with the accepted value: a
        field holding components makes them its own here."""

    def convert(self, owner: str, value: Any) -> Any:
        if self.check is None:
            return value
        try:
            return self.check(value)
        except (TypeError, ValueError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise InvalidValue(owner, self.name, value, self.expected + detail) from None


class ReadOnly:
    """An attribute computed from what ganga_like recorded (an id, a directory, what the
    backend reported); assigning it raises one line naming what can be set instead.

    ``ReadOnly(getter, 'what it is')``; the owner lists its settable attributes with
    ``_settable()``.
    """

    def __init__(self, getter: Callable[[Any], Any], what: str) -> None:
        self.getter = getter
        self.what = what
        self.__doc__ = f"(read-only) {what}"
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return self.getter(obj)

    def __set__(self, obj: Any, value: Any) -> None:
        raise ReadOnlyAttribute(type(obj).__name__, self.name, self.what, obj._settable())


class ReadOnlyView:
    """What a job reports about itself (``j.time``, ``j.info``): read-only attributes
    computed from the job; any assignment is refused in one line saying what it is."""

    _job: Any
    WHAT = ""  # "j.time reports ...; nothing in it is set by hand"

    def __init__(self, job: Any) -> None:
        object.__setattr__(self, "_job", job)

    def __setattr__(self, name: str, value: Any) -> None:
        declared = class_attribute(type(self), name)
        if isinstance(declared, ReadOnly):
            declared.__set__(self, value)  # raises, saying what the attribute is
        raise ReadOnlyAttribute(type(self).__name__, name, self.WHAT, ())

    def _settable(self) -> list[str]:
        return []


def concrete_components(category: str) -> dict[str, type[Component]]:
    """ganga_like's own concrete component classes of one category (not bases such as
    Merger, nothing from outside the package), by name, among those imported so far."""
    found: dict[str, type[Component]] = {}
    pending = list(Component.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        ours = cls.__module__.startswith("ganga_like.")
        is_base = any(sub.__module__.startswith("ganga_like.") for sub in cls.__subclasses__())
        if cls._category == category and ours and not is_base:
            found.setdefault(cls.__name__, cls)
    return found


_MISSING = object()


def class_attribute(cls: type, name: str) -> Any:
    """What ``cls`` (or a base) declares under ``name``, or ``_MISSING``."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _MISSING


def assign_declared(obj: Any, name: str, value: Any) -> bool:
    """Carry out an assignment to a declared data descriptor of ``obj``'s class (a
    :class:`Field`, a :class:`ReadOnly`, a property) by calling the descriptor itself,
    not through ``persistent``'s ``__setattr__``; False if ``name`` is no such descriptor.

    ``persistent``'s ``__setattr__`` marks the object changed (which registers it with
    its connection's transaction) *before* it calls the descriptor. A descriptor that
    then refuses the value (``j.status = 'completed'``, a field of a submitted job, a
    bad value) would leave the unchanged object registered: the client's reads would
    stop seeing other writers' commits (a session starts a new transaction only when
    nothing is pending) and its next write would commit a stale copy and fail with
    EditConflict. A
    descriptor called directly checks first and marks the object changed itself, in
    the transaction that commits the change, only once it has accepted it."""
    declared = class_attribute(type(obj), name)
    setter = getattr(type(declared), "__set__", None)
    if setter is None:
        return False
    if isinstance(declared, property) and declared.fset is None:
        what = (declared.__doc__ or "computed").strip().splitlines()[0].rstrip(".")
        raise ReadOnlyAttribute(type(obj).__name__, name, what, obj._settable())
    setter(declared, obj, value)
    return True


def refuse_stored_field(obj: Any, name: str) -> None:
    """Refuse a user's assignment to a plain stored attribute that only ganga_like sets
    (``j.reason``, ``j.exit_code``, ``j.history``, ...) or to a method name, on an
    object stored in a repository, outside the session's write transactions (inside
    them ganga_like's own code sets these). Left alone, the assignment would be kept
    in the connection uncommitted, with the consequences :func:`assign_declared`
    describes."""
    from .writes import in_write

    if callable(class_attribute(type(obj), name)):
        raise ReadOnlyAttribute(type(obj).__name__, name, "a method, not a setting",
                                obj._settable())
    if getattr(obj, "_p_jar", None) is not None and not in_write():
        raise ReadOnlyAttribute(type(obj).__name__, name, "recorded by ganga_like",
                                obj._settable())


class Component(Persistent):
    """Base of user-configurable persistent objects (applications, backends, ...)."""

    _category = "component"  # 'applications', 'backends', 'splitters', ... for listings
    _owner_job = None  # the Job this component belongs to (for read-only checks)

    def __init__(self, *positional: Any, **values: Any) -> None:
        fields = self.fields()
        if positional:
            names = list(fields)
            shown = ", ".join(f"{n}=..." for n in names[:3]) + (", ..." if len(names) > 3 else "")
            raise InvalidValue(type(self).__name__, "arguments", positional,
                               f"keyword arguments: {type(self).__name__}({shown})")
        for name, value in values.items():
            if name not in fields:
                raise InvalidValue(
                    type(self).__name__,
                    name,
                    value,
                    "one of the attributes " + ", ".join(fields) if fields else "no attributes",
                )
            setattr(self, name, value)

    @classmethod
    def fields(cls) -> dict[str, Field]:
        found: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Field):
                    found[name] = value
        return found

    if not TYPE_CHECKING:  # (hidden from mypy, which would then accept any name)
        def __getattr__(self, name: str) -> NoReturn:
            # Reached only when nothing has the name: a typo (app.exee) names the nearest.
            if name.startswith("_"):
                raise AttributeError(name)
            raise NoSuchAttribute(type(self).__name__, name,
                                  [n for n in dir(type(self)) if not n.startswith("_")])

    def __setattr__(self, name: str, value: Any) -> None:
        # A misspelt attribute (``j.backend.concurency = 4``) would be stored and ignored:
        # refuse names the class does not declare, as Ganga does.
        if name.startswith("_"):
            super().__setattr__(name, value)  # internal: persistent's own, _owner_job
            return
        if not hasattr(type(self), name):
            raise UnknownAttribute(type(self).__name__, name, value, self._settable())
        if not assign_declared(self, name, value):
            # Not a field: a method (j.backend.copy = ...), never a setting.
            raise ReadOnlyAttribute(type(self).__name__, name, "a method, not a setting",
                                    self._settable())

    def _settable(self) -> list[str]:
        return list(self.fields())

    def field_values(self) -> dict[str, Any]:
        """Every field's value (not ``values()``: GenericSplitter has a field of that name)."""
        return {name: getattr(self, name) for name in self.fields()}

    def _check_writable(self, name: str) -> None:
        owner = self._owner_job
        if owner is not None:
            owner._check_component_writable(self, name)

    def copy(self) -> Component:
        """A detached, editable copy (not attached to any job)."""
        fresh = type(self).__new__(type(self))
        for name, value in self.field_values().items():
            fresh.__dict__[name] = _copy.deepcopy(value)
        return fresh

    def with_values(self, overrides: Mapping[str, Any]) -> Component:
        """A detached copy with some fields replaced (used to build subjob views)."""
        fresh = self.copy()
        fields = self.fields()
        for name, value in overrides.items():
            fresh.__dict__[name] = fields[name].convert(type(self).__name__, value)
        return fresh

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.field_values() == self.field_values()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v!r}" for k, v in self.field_values().items() if v != self.fields()[k].default
        )
        return f"{type(self).__name__}({shown})"

    @classmethod
    def describe(cls) -> str:
        """A help text listing the fields, their defaults and expected values."""
        lines = [f"{cls.__name__}: {(cls.__doc__ or '').strip().splitlines()[0] if cls.__doc__ else ''}"]
        for name, field in cls.fields().items():
            lines.append(f"  {name} = {field.default!r}: {field.doc} (expects {field.expected})")
        return "\n".join(lines)


# --- reusable checks -------------------------------------------------------------


class FrozenDict(dict):
    """A dict that refuses in-place changes: assign a new dict to change a field.

    An in-place change of a stored dict would neither be saved nor be checked
    against the job's read-only rule, so it is refused with a clear message.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("this dict cannot be changed in place; assign a new one, "
                        "e.g. app.env = {**app.env, 'KEY': 'value'}")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        return (FrozenDict, (dict(self),))

    def __deepcopy__(self, memo: Any) -> FrozenDict:
        return FrozenDict(_copy.deepcopy(dict(self), memo))


def check_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    return value


def check_nonempty_str(value: Any) -> str:
    value = check_str(value)
    if not value:
        raise ValueError("it is empty")
    _refuse_nul(value)
    return value


def _refuse_nul(text: str, what: str = "it") -> None:
    # A program's path, arguments and environment are C strings: a NUL would cut them
    # short (or fail the process start) far from where the value was set.
    if "\0" in text:
        raise ValueError(f"{what} contains a NUL character")


class FrozenList(ComparesAsList, tuple):
    """A stored list: what a record keeps (the class is in stored records: it stays here).
    Read through a field it is a ``bound.BoundList``, whose edits are assignments; nested
    in another value (an ArgSplitter's argument lists) it refuses in-place changes with a
    hint, since no assignment could follow them."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("this list cannot be changed in place; assign a new one, "
                        "e.g. app.args = [*app.args, 'more']")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse  # type: ignore[assignment]
    __setitem__ = __delitem__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        return (FrozenList, (tuple(self),))

    __hash__ = tuple.__hash__

    def __add__(self, other: Any) -> list:  # type: ignore[override]
        return list(self) + list(other)

    def __radd__(self, other: Any) -> list:
        return list(other) + list(self)

    def __repr__(self) -> str:
        return repr(list(self))


def check_str_list(value: Any) -> tuple[str, ...]:
    """A list of arguments: strings, or numbers turned into strings."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"got {type(value).__name__}")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise TypeError(f"item {item!r} is a {type(item).__name__}")
        _refuse_nul(str(item), f"item {item!r}")
        out.append(str(item))
    return FrozenList(out)


def check_env(value: Any) -> FrozenDict:
    if not isinstance(value, Mapping):
        raise TypeError(f"got {type(value).__name__}")
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or "=" in key:
            raise ValueError(f"bad variable name {key!r}")
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise ValueError(f"value of {key} is a {type(item).__name__}")
        _refuse_nul(key, f"variable name {key!r}")
        _refuse_nul(str(item), f"value of {key}")
        out[key] = str(item)
    return FrozenDict(out)


def check_positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("not a positive whole number")
    return value
