"""A job's description as plain values: what ``export`` writes and ``show --json`` (and the
web view's ``/api/jobs/N``) show under ``description``. Only the configuration: never the
status, history or ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidValue
from .component import Component
from .job import Job

COMPONENT_SLOTS = {"application": "applications", "backend": "backends", "splitter": "splitters"}
LIST_SLOTS = {"postprocessors": "postprocessors", "inputfiles": "files", "outputfiles": "files"}
JOB_KEYS = ("name", "comment", *COMPONENT_SLOTS, *LIST_SLOTS, "do_auto_resubmit", "mode", "priority")
WHOLE_JOB_KEYS = ("priority",)  # a subjob runs with its master's


def description(job: Job) -> dict[str, Any]:
    """One job's entry of an export file: its description as plain values."""
    return _job_entry(job)


def _job_entry(job: Job) -> dict[str, Any]:
    if not isinstance(job, Job):
        raise InvalidValue("export", "jobs", job, "a Job or a list of Jobs")
    top = job.master or job
    entry: dict[str, Any] = {}
    for key in JOB_KEYS:
        if key in COMPONENT_SLOTS:
            # A subjob's application/backend are the master's with its overrides, and
            # it is written without a splitter: the standalone job it ran as.
            value = None if (key == "splitter" and job.master is not None) else getattr(job, key)
            entry[key] = None if value is None else _component_entry(value, job, key)
        elif key in LIST_SLOTS:
            entry[key] = [_component_entry(item, job, key) for item in getattr(top, key)]
        else:
            entry[key] = getattr(top if key in WHOLE_JOB_KEYS else job, key)
    return entry


def _component_entry(component: Component, job: Job, where: str) -> dict[str, Any]:
    return _fields_entry(component, f"job {job.fqid} {where}")


def _fields_entry(component: Component, where: str) -> dict[str, object]:
    entry: dict[str, object] = {"type": type(component).__name__}
    # Fields read one by one, not with values(): GenericSplitter has a field by that name.
    for name in component.fields():
        entry[name] = plain_value(getattr(component, name), f"{where}.{name}")
    return entry


def plain_value(value: Any, where: str) -> Any:
    """The JSON form of a field value (tuples as lists, FrozenDicts as objects, a
    component held in a field, ``Executable(exe=File('run.sh'))``'s, as an object)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Component):
        return _fields_entry(value, where)
    if isinstance(value, (list, tuple)):
        return [plain_value(item, where) for item in value]
    if isinstance(value, Mapping):
        return {str(key): plain_value(item, where) for key, item in value.items()}
    raise InvalidValue("export", where, value, "values that can be written as text "
                       "(strings, numbers, lists, dicts)")
