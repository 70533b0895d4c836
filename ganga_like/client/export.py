"""Ganga's ``export(jobs, path, mode)`` and ``load(path)``: job descriptions as editable
text, in a file named by a path or by ``LocalFile('jobs.txt')``.

The file is JSON, indented, one object per job in a list; every component is an
object naming its type and all of its fields, so a person can see each option and
change it::

    [
      {
        "name": "scan",
        "comment": "",
        "application": {"type": "Executable", "exe": "/bin/echo", "args": ["hi"], "env": {}},
        "backend": {"type": "Local", "concurrency": null},
        "splitter": {"type": "ArgSplitter", "args": [["1"], ["2"]]},
        "postprocessors": [{"type": "TextMerger", "files": ["stdout"], ...}],
        "inputfiles": [],
        "outputfiles": [{"type": "LocalFile", "namePattern": "*.txt", "localDir": ""}],
        "do_auto_resubmit": false,
        "mode": null,
        "priority": 0
      }
    ]

Only the description is written (never the status, history or ids): ``load``
always creates new jobs, each checked field by field like a job typed by hand, and
names the job and field (or the line, for a syntax error) of the first problem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..backends.local.config import Local
from ..errors import GangaLikeError, InvalidValue
from ..model.component import Component, concrete_components
from ..model.description import COMPONENT_SLOTS, JOB_KEYS, LIST_SLOTS, description
from ..model.description import plain_value as _plain
from ..model.files import File, LocalFile
from ..model.job import Job


class ExportFileError(GangaLikeError):
    """An export file that cannot be read back into jobs."""

    def __init__(self, path: str, where: str, problem: str) -> None:
        super().__init__(f"{path}: {where}: {problem}", path=path, where=where, problem=problem)


# --- writing ------------------------------------------------------------------------------


EXPORT_MODES = {"w": "write a new file", "a": "append to the jobs already in it"}


def file_path(target: object, what: str) -> str:
    """The file ``target`` names: a path (``str`` or ``os.PathLike``, ``~`` and variables
    expanded as Ganga does) or Ganga's file object (``LocalFile('jobs.txt')``, relative
    to its ``localDir`` or the current directory; ``File('jobs.txt')``)."""
    if isinstance(target, LocalFile):
        pattern = os.path.expanduser(target.namePattern)
        return os.path.abspath(os.path.join(target.localDir or os.getcwd(), pattern))
    if isinstance(target, File):
        return target.name
    if isinstance(target, (str, os.PathLike)) and os.fspath(target):
        return os.path.abspath(os.path.expandvars(os.path.expanduser(os.fspath(target))))
    raise InvalidValue(what, "filename", target,
                       "a file name, e.g. 'jobs.txt', or LocalFile('jobs.txt')")


def export(jobs_or_job: Any, path: object, mode: str = "w") -> int:
    """Write the description of one job or several to ``path`` (see :func:`file_path`);
    returns how many. ``mode='a'`` adds them to the jobs a file already holds.

    A subjob is written as the standalone job it would be as ``copy()``.
    """
    target = file_path(path, "export()")
    if mode not in EXPORT_MODES:
        raise InvalidValue("export()", "mode", mode, " or ".join(
            f"'{key}' ({what})" for key, what in EXPORT_MODES.items()))
    if isinstance(jobs_or_job, Job):
        jobs = [jobs_or_job]
    elif isinstance(jobs_or_job, (str, bytes, Mapping)) or not hasattr(jobs_or_job, "__iter__"):
        raise InvalidValue("export()", "item", jobs_or_job, "a Job, a list of Jobs or jobs")
    else:
        jobs = list(jobs_or_job)
    entries = [description(job) for job in jobs]
    kept = _entries_in(target) if mode == "a" and os.path.exists(target) else []
    text = json.dumps(kept + entries, indent=2, ensure_ascii=False)
    text = _inline_components(text)
    partial = target + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(partial, target)  # a crash never leaves half an export behind
    return len(entries)


def _inline_components(text: str) -> str:
    """Put short lists of strings on one line: ``"args": ["-n", "5"]`` reads (and edits)
    better than one string per line."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("["):
            j = i + 1
            items = []
            while j < len(lines) and not lines[j].strip().startswith("]"):
                items.append(lines[j].strip())
                j += 1
            simple = j < len(lines) and all(
                not it.rstrip(",").endswith(("{", "[")) and it.rstrip(",")[:1] not in "{["
                for it in items)
            joined = line.rstrip() + ", ".join(it.rstrip(",") for it in items) + lines[j].strip() \
                if simple else ""
            if simple and len(joined) <= 100:
                out.append(joined)
                i = j + 1
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


# --- reading ------------------------------------------------------------------------------


def load(path: object, session: Any = None) -> list[Job]:
    """Create new jobs (status new) from a file written by :func:`export` (and edited);
    ``path`` as :func:`export` takes it.

    With ``session``, each job is also stored in that session's repository (it gets
    an id), as Ganga's ``load`` does; without, they are stored when submitted.
    Raises ``ExportFileError`` naming the line, or the job and field, of the first
    problem, and creates no job at all in that case.
    """
    target = file_path(path, "load()")
    jobs = [_build_job(target, index, entry) for index, entry in enumerate(_entries_in(target))]
    if session is not None:
        for job in jobs:
            session.register(job)
    return jobs


def _entries_in(path: str) -> list[Any]:
    """The job objects of an export file (one written by hand as a single object too)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ExportFileError(path, "cannot read", exc.strerror or str(exc)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportFileError(path, f"line {exc.lineno} column {exc.colno}",
                              f"not valid JSON ({exc.msg})") from None
    if isinstance(data, Mapping):
        data = [data]  # one job written by hand as a single object
    if not isinstance(data, list):
        raise ExportFileError(path, "top level", "expected a list of job objects [{...}, ...]")
    return data


def _build_job(path: str, index: int, entry: Any) -> Job:
    label = f"job {index + 1}"
    if not isinstance(entry, Mapping):
        raise ExportFileError(path, label, "expected an object {...} describing a job")
    if isinstance(entry.get("name"), str) and entry["name"]:
        label += f" ({entry['name']!r})"
    unknown = [key for key in entry if key not in JOB_KEYS]
    if unknown:
        raise ExportFileError(path, f"{label} field {unknown[0]!r}",
                              "unknown; the fields of a job are " + ", ".join(JOB_KEYS))
    attributes: dict[str, Any] = {}
    for key, value in entry.items():
        if key in COMPONENT_SLOTS and value is None and key != "splitter":
            continue  # the Job's default (Executable(), Local())
        attributes[key] = _build_value(path, f"{label} field {key!r}", key, value)
    job = Job()
    if "backend" not in attributes:
        attributes["backend"] = Local()  # Ganga's default backend
    for key, value in attributes.items():
        try:
            setattr(job, key, value)
        except GangaLikeError as exc:
            raise ExportFileError(path, f"{label} field {key!r}", str(exc)) from None
    return job


def _build_value(path: str, where: str, key: str, value: Any) -> Any:
    """One field of an exported job: a component, a list of components, or a plain value."""
    if key in COMPONENT_SLOTS:
        return None if value is None else _build_component(path, where, value, COMPONENT_SLOTS[key])
    if key in LIST_SLOTS:
        if not isinstance(value, list):
            raise ExportFileError(path, where, "expected a list [{...}, ...]")
        return [_build_component(path, f"{where} item {n + 1}", item, LIST_SLOTS[key])
                for n, item in enumerate(value)]
    return value


def _build_component(path: str, where: str, entry: Any, category: str) -> Component:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
        raise ExportFileError(path, where, 'expected an object with a "type", e.g. '
                              '{"type": "Executable", "exe": "/bin/echo"}')
    known = component_types(category)
    kind = entry["type"]
    if kind not in known:
        raise ExportFileError(path, where, f"unknown type {kind!r}; the known {category} are "
                              + ", ".join(sorted(known)))
    cls = known[kind]
    fields = cls.fields()
    # A field left at its default is not set: some defaults (GenericSplitter's empty
    # attribute) mean "unset" and are not values one could assign.
    values = {key: _held(path, f"{where} {kind}.{key}", value)
              if key in fields and not isinstance(fields[key].default, Mapping) else value
              for key, value in entry.items() if key != "type" and not (
                  key in fields and _same(value, _plain(fields[key].default, key)))}
    try:
        return cls(**values)
    except GangaLikeError as exc:
        raise ExportFileError(path, where, str(exc)) from None


def _held(path: str, where: str, value: object) -> object:
    """A field's value with the file objects it holds (``{"type": "File", ...}``, alone
    or in a list) built: ``Executable``'s ``exe`` and ``args``. A dict field's value
    (``env``) is left alone: its keys are the user's."""
    if isinstance(value, list):
        return [_held(path, f"{where} item {n + 1}", item) for n, item in enumerate(value)]
    if isinstance(value, Mapping) and value.get("type") in component_types("files"):
        return _build_component(path, where, value, "files")
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal as text (so that 0 is not taken for False)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def component_types(category: str) -> dict[str, type[Component]]:
    """The component classes of one category that ``load`` can create, by name."""
    # Imported here so that every built-in component class is defined.
    from ..model import application, files, postprocessors, splitters  # noqa: F401

    # Only ganga_like's own, concrete classes: a file must not name arbitrary code to build.
    return concrete_components(category)

