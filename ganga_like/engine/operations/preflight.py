"""What ``submit()`` refuses before anything is sent, as Ganga does: the job stays new.

For jobs that run on this machine (``Local``, and ``Interactive``, which uses
Local's actor), an executable that does not exist or cannot run is refused at
``submit()`` in one line, instead of a job that runs and fails with exit code 127.
A name without ``/`` is looked up in the ``PATH`` the payload will have (the
submitter's, unless the job uses the backend's own); a relative path is resolved
from the payload's directory at run time, so it is left to the run. Other backends
run elsewhere, where this machine cannot look.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from ...backends.local.config import Local
from ...backends.local.interactive import Interactive
from ...errors import ApplicationConfigurationError


def runs_here(backend: object) -> bool:
    """Whether ``backend``'s payloads run on this machine (Local's actor runs them)."""
    return isinstance(backend, (Local, Interactive))


def problem(exe: str, path_variable: str) -> str:
    """Why ``exe`` cannot run here ('' if it can, or if it cannot be told here)."""
    if "/" in exe:
        if not os.path.isabs(exe):
            return ""
        if not os.path.exists(exe):
            return f"{exe} does not exist"
        if os.path.isdir(exe) or not os.access(exe, os.X_OK):
            return f"{exe} is not executable"
        return ""
    candidates = [os.path.join(d or ".", exe) for d in path_variable.split(os.pathsep)]
    if any(os.path.isfile(c) and os.access(c, os.X_OK) for c in candidates):
        return ""
    if any(os.path.exists(c) for c in candidates):
        return f"{exe} is in PATH but not executable"
    return f"{exe} is not found in PATH ({path_variable or 'empty'})"


def check_executables(fqid: str, exes: Iterable[str], environment: Mapping[str, str]) -> None:
    path_variable = environment.get("PATH", "")
    for exe in sorted(set(exes)):
        why = problem(exe, path_variable)
        if why:
            raise ApplicationConfigurationError(
                fqid, "submit", "new", f"application.exe: {why}; the job stays new: fix "
                "j.application.exe (an absolute path, or a program in your PATH) and submit again")
