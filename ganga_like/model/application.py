"""Applications: what a (sub)job runs.

``Executable(exe=File('run.sh'), args=['-v', File('in.dat')])``, as in Ganga: a
``File`` is sent with the job. At submit each one is copied into the (sub)job's
``input/`` and working directory (``model.files.stage_inputs``); the payload runs the
copy of a File ``exe`` (made executable) and gets a File argument's name in the
working directory (``in.dat``): :func:`payload_command`. The Files belong to the
application, so a submitted job refuses their edits as it refuses the application's.
"""

from __future__ import annotations

import copy as _copy
import os
from collections.abc import Iterable, Mapping

from persistent import Persistent

from .component import (
    Component,
    Field,
    FrozenDict,
    FrozenList,
    check_env,
    check_nonempty_str,
    check_str_list,
)
from .files import File, files_among


def _check_exe(value: object) -> str | File:
    if isinstance(value, File):  # Ganga's Executable(exe=File('run.sh')): that file, sent
        return value
    return check_nonempty_str(value)


_STRINGS_ONLY = {str}


def _check_args(value: object) -> FrozenList:
    """Arguments: strings, numbers (kept as strings) and ``File`` objects."""
    if type(value) is FrozenList and set(map(type, value)) <= _STRINGS_ONLY:
        # A stored list of strings (an ArgSplitter's row): checked as it was stored, and
        # immutable; a split of 100,000 rows no longer checks each twice.
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"got {type(value).__name__}")
    texts = iter(check_str_list([item for item in value if not isinstance(item, File)]))
    return FrozenList(item if isinstance(item, File) else next(texts) for item in value)


def _claimed(value: object, owner: object) -> object:
    """``value`` with each File that another object owns replaced by a copy (one owner
    per component, as a job's files: assigning another job's File copies it)."""
    if isinstance(value, File):
        held_by = value._owner_job
        return value.copy() if held_by is not None and held_by is not owner else value
    if isinstance(value, (list, tuple)):
        return [_claimed(item, owner) for item in value]
    return value


def _detached(value: object) -> object:
    """A copy of a field's value for a copied application: Files copied (never their
    owner with them, as a deep copy of a File would), lists as stored lists."""
    if isinstance(value, File):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return FrozenList(_detached(item) for item in value)
    return _copy.deepcopy(value)


def _own(app: Executable, files: Iterable[File]) -> None:
    for item in files:
        if item._owner_job is not app:
            Persistent.__setattr__(item, "_owner_job", app)


class _HoldsFiles(Field):
    """A field whose value may hold File objects: they become the application's own, so
    an edit of one is checked against the job's read-only rule like the application's."""

    def __set__(self, obj: object, value: object) -> None:
        super().__set__(obj, _claimed(value, obj))

    def attach(self, obj: object, value: object) -> None:
        # Inside the change's own transaction (see datasets._FilesField.attach).
        assert isinstance(obj, Executable)
        _own(obj, files_among(value))


class Executable(Component):
    """Run a program with arguments and extra environment variables.

    The program is executed directly, never through a shell: each argument arrives
    verbatim (spaces, quotes, ``$HOME`` and ``;`` are not interpreted). ``exe`` is an
    absolute path, a command name looked up on ``PATH``, or ``File('run.sh')``: that
    file, copied into the job at submit and run there. A ``File`` among ``args`` is
    copied into the job's working directory too and passed by its name there.
    """

    _category = "applications"

    exe = _HoldsFiles("echo", _check_exe, "a program path or name, e.g. '/bin/echo', or File('run.sh')",
                      "the program to run (a File is sent with the job and run there)")
    args = _HoldsFiles(FrozenList(("Hello World",)), _check_args,
                       "a list of strings, e.g. ['-n', '5'] or ['-v', File('in.dat')]",
                       "its arguments (a File is sent with the job and passed by its name "
                       "there; edited in place or assigned: checked either way)")
    env = Field(FrozenDict(), check_env, "a dict of variable names to strings, e.g. {'SEED': '7'}",
                "variables added to the job's environment")

    def files(self) -> list[File]:
        """The File objects this application sends with the job: ``exe``'s, then the
        arguments'."""
        return files_among(self.exe, self.args)

    def command(self) -> list[str]:
        """The command line the payload runs, as :func:`payload_command` gives it."""
        exe, args = payload_command(self.exe, self.args)
        return [exe, *args]

    def _check_component_writable(self, component: Component, name: str) -> None:
        where = "exe" if component is self.exe else "args"
        self._check_writable(f"{where}.{name}")

    def copy(self) -> Executable:
        """A detached, editable copy (its Files copied too)."""
        fresh = type(self).__new__(type(self))
        for name, value in self.field_values().items():
            fresh.__dict__[name] = _detached(value)
        _own(fresh, fresh.files())
        return fresh

    def with_values(self, overrides: Mapping[str, object]) -> Executable:
        """A detached copy with some fields replaced (a subjob's view): the Files of the
        replaced values are copies owned by the view."""
        fresh = self.copy()
        fields = self.fields()
        for name, value in overrides.items():
            fresh.__dict__[name] = _detached(fields[name].convert(type(self).__name__, value))
        _own(fresh, fresh.files())
        return fresh


def payload_command(exe: object, args: Iterable[object]) -> tuple[str, tuple[str, ...]]:
    """The program and arguments a payload is started with, as plain strings: a File
    ``exe`` is its copy in the working directory (``./run.sh``), a File argument its
    name there (``in.dat``); anything else as stored."""
    program = os.path.join(".", exe.staged_name()) if isinstance(exe, File) else str(exe)
    return program, tuple(a.staged_name() if isinstance(a, File) else str(a) for a in args)
