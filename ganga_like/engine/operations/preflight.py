"""What ``submit()`` refuses before anything is sent, as Ganga does: the job stays new.

An application that cannot run as configured is refused at ``submit()`` in one line
(``ApplicationConfigurationError``: what is wrong, and the way out), instead of a job
that runs and fails with exit code 127. Ganga's ``Executable.configure`` rules, for
every backend:

* ``exe`` is a program, not a command line: no white space (``'sleep 6'``), unless it
  is the absolute path of a file that exists (the program is started directly, never
  through a shell, so such a path runs as it is);
* not a directory path (``'/opt/tools/'``);
* not a relative path with a directory part (``'bin/hostname'``): the payload runs
  in the job's working directory, where that path names nothing, unless one of the
  job's input files is staged there (``inputfiles=[File('x.sh', subdir='bin')]``);
* a ``File`` (``exe`` or among ``args``) must exist (Ganga's "file not found"), and
  two Files of one application may not be copied to the same name.

For jobs that run on this machine (``Local``, and ``Interactive``, which uses Local's
actor), an absolute path must also exist and be executable, and a name without ``/``
is looked up in the ``PATH`` the payload will have (the submitter's, unless the job
uses the backend's own). Other backends run elsewhere, where this machine cannot look.

A resource request (``cpus``, ``gpus``, ``memory``, ``resources``: the master's, and
each subjob's own from the splitter) that no machine of the backend could ever hold
is refused the same way (:func:`check_resources`), naming what exists: this machine
for Local, each alive node for RayCluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from ...backends.local.config import Local
from ...backends.local.interactive import Interactive
from ...backends.resources import Request
from ...errors import ApplicationConfigurationError, OperationRefused
from ...model.files import File, files_among, working_names
from ...model.job import Job

IN_PATH = "an absolute path, or a program in your PATH"


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
        if os.path.isdir(exe):
            return f"{exe} is a directory"
        if not os.access(exe, os.X_OK):
            return f"{exe} is not executable"
        return ""
    candidates = [os.path.join(d or ".", exe) for d in path_variable.split(os.pathsep)]
    if any(os.path.isfile(c) and os.access(c, os.X_OK) for c in candidates):
        return ""
    if any(os.path.exists(c) for c in candidates):
        return f"{exe} is in PATH but not executable"
    return f"{exe} is not found in PATH ({path_variable or 'empty'})"


def form_problem(exe: str, staged: Iterable[str]) -> tuple[str, str]:
    """(why the string ``exe`` is no program on any machine, how to fix it), or
    ('', '') if it is one: Ganga's rules, which do not depend on where the job runs.
    ``staged``: the paths the job's input files will have in its working directory."""
    if any(ch.isspace() for ch in exe) and not (os.path.isabs(exe) and os.path.isfile(exe)):
        program, *arguments = exe.split()
        return (f"{exe!r} contains white space: a command line, not a program",
                f"the program alone, its arguments in j.application.args: "
                f"exe={program!r}, args={arguments!r}")
    if exe.endswith("/"):
        return f"{exe} is a directory path", IN_PATH
    if "/" in exe and not os.path.isabs(exe) and os.path.normpath(exe) not in staged:
        return (f"{exe!r} is a relative path: the program runs in the job's working "
                f"directory, where no input file of the job is staged as {exe}",
                f"an absolute path, a program in your PATH, or File({exe!r}) to send "
                f"that file with the job")
    return "", ""


def check_application(job: Job, targets: Sequence[Job],
                      environment: Mapping[str, str] | None) -> None:
    """Refuse (``ApplicationConfigurationError``, one line) an application of ``job``
    that cannot run: that of each of ``targets`` (the master's, with a subjob's own
    values from the splitter). ``environment``: the payloads' when they run on this
    machine; None when they run elsewhere (then only what holds everywhere is checked)."""
    variants = _variants(job, targets)
    staged = working_names(job)
    for variant in variants:
        staged.update(f.staged_name() for f in files_among(variant.exe, variant.args))
    checked: set[str] = set()
    for variant in variants:
        where, exe, args = variant.where, variant.exe, variant.args
        if isinstance(exe, File):
            _check_file(job, f"{where}.exe", exe, variant.fix("exe"))
        elif isinstance(exe, str) and exe not in checked:
            checked.add(exe)
            why, how = form_problem(exe, staged)
            if not why and environment is not None:
                why, how = problem(exe, environment.get("PATH", "")), IN_PATH
            if why:
                _refuse(job, f"{where}.exe", why, f"{variant.fix('exe')} ({how})")
        for index, item in enumerate(args):
            if isinstance(item, File):
                _check_file(job, f"{where}.args[{index}]", item, variant.fix("args"))
        by_name: dict[str, File] = {}
        for item in files_among(exe, args):
            other = by_name.setdefault(item.staged_name(), item)
            if os.path.realpath(other.name) != os.path.realpath(item.name):
                _refuse(job, where, f"File({other.name!r}) and File({item.name!r}) would "
                        f"both be copied to {item.staged_name()} in the job's working "
                        f"directory", f"{variant.fix('args')} (files of different names, "
                        f"or File(..., subdir='x') for one of them)")


class _Variant(NamedTuple):
    """One application that runs: the master's, or a subjob's with the splitter's values."""

    where: str  # 'application' or 'subjob 3: application'
    exe: object
    args: Sequence[object]
    by_splitter: bool

    def fix(self, field: str) -> str:
        """What the user changes to fix ``field``."""
        return "j.splitter" if self.by_splitter else f"j.application.{field}"


def _variants(job: Job, targets: Sequence[Job]) -> list[_Variant]:
    app = job.application
    found: list[_Variant] = []
    masters = not targets  # the master's own values run in some target
    for target in targets:
        own = target._overrides
        # Arguments of plain words with the master's exe check nothing the master's
        # variant does not (100,000 such subjobs made 100,000 variants to look through).
        if "application.exe" in own or any(isinstance(a, File) for a in own.get("application.args", ())):
            found.append(_Variant(f"subjob {target.id}: application",
                                  own.get("application.exe", app.exe),
                                  own.get("application.args", app.args), True))
        else:
            masters = True
    if masters:
        found.insert(0, _Variant("application", app.exe, app.args, False))
    return found


def _check_file(job: Job, where: str, item: File, fix: str) -> None:
    why = item.problem()
    if why:
        _refuse(job, where, f"File({item.name!r}): {why}",
                f"{fix} (create the file, or name an existing one)")


def _refuse(job: Job, where: str, why: str, fix: str) -> None:
    raise ApplicationConfigurationError(
        job.fqid, "submit", "new", f"{where}: {why}; the job stays new: fix {fix} and submit again")


def check_resources(job: Job, targets: Sequence[Job]) -> None:
    """Refuse (``OperationRefused``, one line) a request of ``job`` or of one of its
    ``targets`` that no machine of its backend could ever hold; the job stays new."""
    backend = job.backend
    asked: dict[Request, str] = {}
    shared = False  # a target without values of its own asks for the job's request (read once)
    for target in targets:
        own = {path.partition(".")[2]: value for path, value in target._overrides.items()
               if path.startswith("backend.")}
        if own:
            asked.setdefault(backend.with_values(own).resource_request(), f"subjob {target.id}: ")
        elif not shared:
            shared = True
            asked.setdefault(backend.resource_request(), "")
    for request, where in asked.items():
        why = backend.refusal(request)
        if why:
            fix = "j.splitter" if where else "j.backend"
            raise OperationRefused(job.fqid, "submit", "new", f"{where}{why}; the job stays new: "
                                   f"ask for less in {fix} and submit again")
