"""A job shown as its whole configuration tree, as Ganga prints ``j``.

``print(j)``, ``j`` in the shell, ``jobs(3)`` and ``j.subjobs[3]`` show every
attribute a user reads: identity and status, directories, ``info``, ``time``,
the application, the backend with what it reported of the run, the splitter,
postprocessors and files. A master's subjobs are shown by their per-status
counts: printing a master of 10,000 subjobs reads none of them.
"""

from __future__ import annotations

from typing import Any

from .table import counts_summary, plural

INDENT = "  "


def _value(value: Any, depth: int) -> str:
    from .component import Component

    if isinstance(value, Component):
        return component_tree(value, depth)
    if isinstance(value, (list, tuple)) and any(isinstance(v, Component) for v in value):
        pad = INDENT * (depth + 1)
        items = ",\n".join(pad + _value(v, depth + 1) for v in value)
        return "[\n" + items + "\n" + INDENT * depth + "]"
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value)


def _block(title: str, items: list[tuple[str, str]], depth: int) -> str:
    pad = INDENT * (depth + 1)
    lines = [f"{pad}{name} = {text}" for name, text in items]
    return f"{title} (\n" + ",\n".join(lines) + "\n" + INDENT * depth + ")"


def component_tree(component: Any, depth: int = 0) -> str:
    items = [(name, _value(value, depth + 1)) for name, value in component.field_values().items()]
    run_info = getattr(component, "run_info", None)
    if run_info is not None:
        items += [(name, repr(value)) for name, value in run_info().items()]
    return _block(type(component).__name__, items, depth)


def _time_block(job: Any, depth: int) -> str:
    pad = INDENT * (depth + 1)
    lines = job.time.display().splitlines()
    return "JobTime (\n" + "\n".join(pad + line for line in lines) + "\n" + INDENT * depth + ")"


def job_tree(job: Any) -> str:
    """The whole configuration of ``job`` as an indented tree (Ganga's ``print(j)``)."""
    depth = 1
    items: list[tuple[str, str]] = [
        ("id", repr(job.id)),
        ("fqid", repr(job.fqid)),
        ("status", repr(job.status.value)),
        ("name", repr(job.name)),
        ("comment", repr(job.comment)),
    ]
    if job.reason:
        items.append(("reason", repr(job.reason)))
    if job._subjobs is None:  # a job that runs itself (a master's runs are its subjobs')
        items += [("exit_code", repr(job.exit_code)), ("backend_detail", repr(job.backend_detail))]
    items += [
        ("inputdir", repr(job.inputdir)),
        ("outputdir", repr(job.outputdir)),
        ("do_auto_resubmit", repr(job.do_auto_resubmit)),
        ("mode", repr(job.mode)),
        ("env_from", repr(job.env_from)),
        ("priority", repr((job.master or job).priority)),
        ("info", _block("JobInfo", [(k, repr(v)) for k, v in job.info.values().items()],
                        depth)),
        ("time", _time_block(job, depth)),
        ("application", _value(job.application, depth)),
        ("backend", _value(job.backend, depth)),
    ]
    top = job.master or job
    items += [
        ("splitter", _value(job.splitter, depth)),
        ("postprocessors", _value(job.postprocessors, depth)),
        ("inputfiles", _value(top.inputfiles, depth)),
        ("outputfiles", _value(top.outputfiles, depth)),
        ("inputdata", _value(top.inputdata, depth)),
    ]
    if job.master is not None:
        items.append(("master", repr(job.master.id)))
    else:
        n = len(job.subjobs)
        shown = (f"'{plural(n, 'subjob')}: {counts_summary(job.subjob_counts)} (j.subjobs lists them)'"
                 if n else "[]")
        items.append(("subjobs", shown))
    return _block("Job", items, 0)
