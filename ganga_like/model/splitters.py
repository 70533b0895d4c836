"""Splitters: turn one job description into the subjobs' differences.

A splitter returns, for each subjob, a dict of overrides keyed by dotted path
(``'application.args'``, ``'backend.num_cpus'``). A subjob stores only its overrides;
its application and backend are the master's with those applied. That keeps a
subjob's record small (10,000 subjobs commit in well under a second).

Any application field can differ between subjobs. A backend field can where the
backend carries it in each subjob's spec: RayCluster's ``num_cpus``, ``resources``
and ``max_retries``, every field of Hosts. A field that chooses the backend's actor
(Local's ``concurrency``, RayCluster's ``address``) is the whole job's, and
``submit()`` refuses a splitter that sets it, in one line naming the fields that
can differ (``operations.submit.backend_fields_per_subjob``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .component import Component, Field, FrozenDict, FrozenList

SPLITTABLE_ROOTS = ("application", "backend")


def _check_arg_lists(value: Any) -> tuple[tuple[str, ...], ...]:
    from .component import check_str_list

    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"got {type(value).__name__}")
    return FrozenList(check_str_list(item) for item in value)


def _check_attribute_path(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    root, _, leaf = value.partition(".")
    if root not in SPLITTABLE_ROOTS or not leaf or "." in leaf:
        raise ValueError("use 'application.<field>' or 'backend.<field>'")
    return value


def _check_values(value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"got {type(value).__name__}")
    return FrozenList(value)


def _check_multi_attrs(value: Any) -> dict[str, tuple]:
    if not isinstance(value, Mapping):
        raise TypeError(f"got {type(value).__name__}")
    out = FrozenDict({_check_attribute_path(k): _check_values(v) for k, v in value.items()})
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise ValueError("every list of values must have the same length")
    return out


class Splitter(Component):
    _category = "splitters"

    def split(self, job: Any) -> list[dict[str, Any]]:  # pragma: no cover - interface
        raise NotImplementedError


class ArgSplitter(Splitter):
    """One subjob per argument list: ``ArgSplitter(args=[['a'], ['b', 'c']])``."""

    args = Field((), _check_arg_lists, "a list of argument lists, e.g. [['1'], ['2']]",
                 "the application.args of each subjob")

    def split(self, job: Any) -> list[dict[str, Any]]:
        return [{"application.args": args} for args in self.args]  # stored lists, checked


class GenericSplitter(Splitter):
    """One subjob per value of one attribute, or per row of several (``multi_attrs``).

    ``GenericSplitter(attribute='application.args', values=[['1'], ['2']])`` or
    ``GenericSplitter(multi_attrs={'application.args': [['1'], ['2']],
    'application.env': [{'X': '1'}, {'X': '2'}]})``. A backend field too, where each
    subjob can have its own (``'backend.num_cpus'`` on RayCluster, ``'backend.label'``
    on Hosts; see the module's docstring).
    """

    attribute = Field("", _check_attribute_path, "'application.<field>' or 'backend.<field>'",
                      "the attribute that differs between subjobs")
    values = Field((), _check_values, "a list of values, one per subjob", "the values it takes")
    multi_attrs = Field(FrozenDict(), _check_multi_attrs,
                        "a dict of attribute paths to equally long lists of values",
                        "several attributes that differ together")

    def split(self, job: Any) -> list[dict[str, Any]]:
        if self.multi_attrs and self.attribute:
            from ..errors import InvalidValue

            raise InvalidValue("GenericSplitter", "multi_attrs", self.multi_attrs,
                               "either attribute/values or multi_attrs, not both")
        if self.multi_attrs:
            keys = list(self.multi_attrs)
            rows = zip(*(self.multi_attrs[k] for k in keys), strict=True)  # equal lengths: checked on set
            return [dict(zip(keys, row, strict=True)) for row in rows]
        if not self.attribute:
            return []
        return [{self.attribute: value} for value in self.values]
