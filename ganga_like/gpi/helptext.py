"""``help(Job)`` and ``help(Executable)`` as a user reads them: the fields and the
verbs, without the storage machinery the classes inherit."""

from __future__ import annotations

import inspect
from typing import Any

from ..model.component import Component


def _verbs(cls: type, own_base: type) -> list[str]:
    lines = []
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_") or not callable(member) or isinstance(member, type):
            continue
        doc = inspect.getdoc(member) or ""
        try:
            params = [p.replace(annotation=inspect.Parameter.empty)
                      for p in inspect.signature(member).parameters.values() if p.name != "self"]
            signature = str(inspect.Signature(params))
        except (TypeError, ValueError):
            signature = "(...)"
        lines.append(f"  {name}{signature}\n      " + "\n      ".join(doc.splitlines() or [""]))
    return lines


def help_text(cls: type) -> str:
    """The help page of a GPI class (Job, JobTemplate, a component)."""
    from ..model.job import Job

    doc = inspect.getdoc(cls) or ""
    if issubclass(cls, Job):
        verbs = _verbs(Job, Job)
        return f"{cls.__name__}\n\n{doc}\n\nVerbs:\n" + "\n".join(verbs)
    if issubclass(cls, Component):
        parts = [cls.describe(), "", doc]
        readonly = getattr(cls, "_RUN_ATTRIBUTES", ())
        if readonly:
            parts.append("\nRead-only, what the backend reported of the job's run: "
                         + ", ".join(readonly))
        methods = [line for klass in reversed(cls.__mro__)
                   if klass.__module__.startswith("ganga_like.") and klass is not Component
                   for line in _verbs(klass, cls)]
        if methods:
            parts.append("\nMethods:\n" + "\n".join(methods))
        return "\n".join(parts)
    return doc


def show_help(obj: Any) -> bool:
    """Print our help page for ``obj`` if it is one of our GPI classes; False otherwise."""
    from ..model.job import Job

    cls = obj if isinstance(obj, type) else None
    if cls is None and isinstance(obj, (Job, Component)):
        cls = type(obj)
    if cls is None or not issubclass(cls, (Job, Component)):
        return False
    import pydoc

    pydoc.pager(help_text(cls))
    return True
