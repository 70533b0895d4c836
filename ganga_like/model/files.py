"""File objects for ``j.inputfiles`` and ``j.outputfiles`` (category 'files').

``LocalFile('*.txt')`` follows Ganga's LocalFile (``File('x.sh')``, Ganga's plain
file, is an input file, an ``Executable``'s program or one of its arguments, sent with
the job; Ganga's remote file types,
``MassStorageFile``, ``DiracFile``, ..., raise ``NotAvailable`` when used):

* as an output file, after the payload exits with 0 the files matching
  ``namePattern`` in the (sub)job's ``output/`` directory (the payload's working
  directory) are kept there and, if ``localDir`` is set, copied to it;
  :meth:`LocalFile.collect` does this and returns the paths found;
* as an input file, the files matching ``namePattern`` (relative to ``localDir``,
  or to the current directory when ``localDir`` is empty) are copied into the
  (sub)job's ``input/`` directory and into ``output/`` (the payload's working
  directory) before it runs: :func:`stage_inputs`.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import InvalidValue, NotAvailable
from .component import Component, Field

INPUT_DIR = "input"
OUTPUT_DIR = "output"


def _check_pattern(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    if not value.strip():
        raise ValueError("it is empty")
    if "\0" in value:
        raise ValueError("it contains a NUL character")
    return value


def _check_local_dir(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    if "\0" in value:
        raise ValueError("it contains a NUL character")
    # Stored absolute: the monitor thread, a later session or a resubmission may run
    # with another working directory than the one the user typed it in.
    return os.path.abspath(os.path.expanduser(value)) if value else ""


class LocalFile(Component):
    """A file (or glob pattern) on this machine: ``LocalFile('*.txt', localDir='/data')``."""

    _category = "files"

    namePattern = Field("*.txt", _check_pattern,  # noqa: N815 (Ganga's name)
                        "a file name or glob pattern, e.g. 'results.txt' or '*.root'",
                        "which files: relative to the job's output directory (outputs) "
                        "or to localDir (inputs)")
    localDir = Field("", _check_local_dir,  # noqa: N815 (Ganga's name)
                     "a directory path (or '' for none), e.g. '/home/me/results'",
                     "outputs are also copied here; inputs are taken from here")

    def __init__(self, namePattern: Any = None, localDir: Any = None,  # noqa: N803
                 **values: Any) -> None:
        # Ganga's first positional argument is the pattern: LocalFile('x.txt').
        if namePattern is not None:
            values["namePattern"] = namePattern
        if localDir is not None:
            values["localDir"] = localDir
        super().__init__(**values)

    # -- as an output file -------------------------------------------------------------
    def collect(self, job: Any) -> list[str]:
        """Find this pattern's files in ``job``'s output directory, copy them to
        ``localDir`` if set, and return the paths found (in the output directory).

        For a subjob the copies go to ``localDir/<subjob id>/`` so that subjobs
        writing the same file name do not overwrite each other's copies.
        """
        pattern = self.namePattern
        if os.path.isabs(pattern) or ".." in pattern.split(os.sep):
            raise InvalidValue("LocalFile", "namePattern", pattern,
                               "a pattern relative to the job's output directory for an output file")
        out_dir = os.path.join(job.workdir, OUTPUT_DIR)
        found = sorted(p for p in glob.glob(os.path.join(glob.escape(out_dir), pattern))
                       if os.path.isfile(p))
        if found and self.localDir:
            target = self.localDir
            if getattr(job, "master", None) is not None:
                target = os.path.join(target, str(job.id))
            for path in found:
                copy = os.path.join(target, os.path.relpath(path, out_dir))
                os.makedirs(os.path.dirname(copy), exist_ok=True)
                shutil.copy2(path, copy)
        return found

    # -- as an input file -------------------------------------------------------------
    def sources(self) -> list[str]:
        """The local files this input pattern names now (raises if there are none)."""
        pattern = os.path.expanduser(self.namePattern)
        base = self.localDir or os.getcwd()
        full = pattern if os.path.isabs(pattern) else os.path.join(glob.escape(base), pattern)
        found = sorted(p for p in glob.glob(full) if os.path.isfile(p))
        if not found:
            raise InvalidValue("LocalFile", "namePattern", self.namePattern,
                               f"an existing file or pattern matching files (looked for {full})")
        return found

    def stage(self, workdir: str) -> list[str]:
        """Copy this input's files into ``workdir/input`` and ``workdir/output``."""
        copied = []
        for source in self.sources():
            name = os.path.basename(source)
            for sub in (INPUT_DIR, OUTPUT_DIR):
                target_dir = os.path.join(workdir, sub)
                os.makedirs(target_dir, exist_ok=True)
                shutil.copy2(source, os.path.join(target_dir, name))
            copied.append(os.path.join(workdir, INPUT_DIR, name))
        return copied


class File(Component):
    """A file on this machine, Ganga's ``File('script.sh')``, sent with the job: in
    ``j.inputfiles``, as ``Executable(exe=File('run.sh'))`` (the program to run) or
    among ``Executable(args=[...])``, it is copied into the job's ``input/`` and working
    directory (``subdir`` below it) at submit; the job uses that copy."""

    _category = "files"

    name = Field("", _check_local_dir, "a file path, e.g. 'run.sh' or '/home/me/run.sh'",
                 "the file (stored as an absolute path)")
    subdir = Field(".", _check_pattern, "a directory name relative to the working directory",
                   "where an input copy goes, below the job's working directory")

    def __init__(self, name: Any = None, subdir: Any = None, **values: Any) -> None:
        if name is not None:
            values["name"] = name
        if subdir is not None:
            values["subdir"] = subdir
        super().__init__(**values)

    def _usable_as(self, attribute: str) -> None:
        if attribute == "outputfiles":
            raise InvalidValue("Job", "outputfiles", self, "LocalFile('pattern') for the "
                               "files a job makes; File() names an input")

    def problem(self) -> str:
        """Why the file cannot be sent with a job ('' if it can), Ganga's words."""
        if not self.name or not os.path.exists(self.name):
            return "file not found"
        if not os.path.isfile(self.name):
            return "not a file"
        return ""

    def staged_name(self) -> str:
        """Where its copy is, relative to the working directory: ``subdir/base name``."""
        return os.path.normpath(os.path.join(self.subdir, os.path.basename(self.name)))

    def stage(self, workdir: str, executable: bool = False) -> list[str]:
        """Copy the file into ``workdir/input`` and ``workdir/output/<subdir>``; with
        ``executable``, the copies are made executable by their owner (u+x)."""
        if self.problem():
            raise InvalidValue("File", "name", self.name, "an existing file")
        base = os.path.basename(self.name)
        copied = []
        for target_dir in (os.path.join(workdir, INPUT_DIR),
                           os.path.normpath(os.path.join(workdir, OUTPUT_DIR, self.subdir))):
            os.makedirs(target_dir, exist_ok=True)
            target = os.path.join(target_dir, base)
            if os.path.lexists(target):  # a resubmission's: replaced even if read-only
                os.unlink(target)
            shutil.copy2(self.name, target)
            if executable:
                os.chmod(target, os.stat(target).st_mode | stat.S_IXUSR)
        copied.append(os.path.join(workdir, INPUT_DIR, base))
        return copied


def files_among(*values: object) -> list[File]:
    """The ``File`` objects among ``values`` (each a File, a list holding some, or
    anything else), in order."""
    found: list[File] = []
    for value in values:
        if isinstance(value, File):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(files_among(*value))
    return found


class _NotAvailable:
    """A Ganga file type that needs a service ganga_like does not talk to."""

    def __init__(self, name: str, why: str) -> None:
        self.__name__ = name
        self._why = why

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotAvailable(self.__name__, self._why,
                           "use LocalFile('pattern', localDir='/path') for files on this "
                           "machine or a shared file system")

    def __repr__(self) -> str:
        return f"<{self.__name__}: not available ({self._why})>"


NOT_AVAILABLE = {
    "MassStorageFile": "it stores files on mass storage (EOS, Castor) through its commands",
    "SharedFile": "it copies to a shared area configured in Ganga's [Output] section",
    "DiracFile": "it needs DIRAC's grid storage",
    "LCGSEFile": "it needs a grid storage element",
    "GoogleFile": "it needs Google Drive credentials",
    "WebDAVFile": "it needs a WebDAV server",
    "ShareDir": "applications are not prepared into a shared directory here",
}
UNAVAILABLE_FILES = {name: _NotAvailable(name, why) for name, why in NOT_AVAILABLE.items()}


class Staged(Protocol):
    """What staging reads of a (sub)job (a ``model.job.Job``)."""

    @property
    def master(self) -> Staged | None: ...

    @property
    def application(self) -> object: ...

    @property
    def inputfiles(self) -> Sequence[object]: ...


def stage_inputs(job: Staged, workdir: str) -> list[str]:
    """Copy the input files of ``job`` (its master's, for a subjob) into ``workdir``:
    its ``inputfiles``, then its ``inputdata``'s files if that dataset says
    ``treat_as_inputfiles=True``, then the Files of its application (a subjob's: the
    master's with the splitter's values): its arguments', and its ``exe``'s, made
    executable.

    To be called by the session for each (sub)job just before it is handed to the
    backend; raises ``InvalidValue`` (one line) when an input file does not exist.
    Returns the staged paths in ``workdir/input``.
    """
    inputs, exe = _sent_with(job)
    staged: list[str] = []
    for item in inputs:
        stage = getattr(item, "stage", None)
        if stage is not None:
            staged.extend(stage(workdir))
    if exe is not None:
        staged.extend(exe.stage(workdir, executable=True))
    return staged


def working_names(job: Staged) -> set[str]:
    """The paths, relative to the working directory, that the files staged for ``job``
    (:func:`stage_inputs`) will have there, as far as they can be told before (a
    LocalFile pattern that matches nothing yet gives none)."""
    inputs, exe = _sent_with(job)
    names: set[str] = set()
    for item in (*inputs, *files_among(exe)):
        if isinstance(item, File):
            names.add(item.staged_name())
        elif isinstance(item, LocalFile):
            try:
                names.update(os.path.basename(path) for path in item.sources())
            except InvalidValue:
                pass  # staging says so
    return names


def _sent_with(job: Staged) -> tuple[tuple[object, ...], File | None]:
    """(what is staged for ``job`` but its program, in order; its program's File)."""
    top = job.master or job
    app = job.application
    exe = getattr(app, "exe", None)
    inputs = (*top.inputfiles, *dataset_inputs(top), *files_among(getattr(app, "args", ())))
    return inputs, exe if isinstance(exe, File) else None


def dataset_inputs(job: Any) -> tuple:
    """The files of ``job``'s ``inputdata`` that are staged as input files: those of a
    dataset with ``treat_as_inputfiles=True`` (none otherwise)."""
    dataset = getattr(job, "inputdata", None)
    if dataset is None or not getattr(dataset, "treat_as_inputfiles", False):
        return ()
    return tuple(getattr(dataset, "files", ()))


def collect_outputs(job: Any) -> dict[str, list[str]]:
    """Run ``collect`` of each output file of ``job`` (its master's, for a subjob).

    Returns ``{namePattern: [paths found]}``.
    """
    top = getattr(job, "master", None) or job
    found: dict[str, list[str]] = {}
    for item in top.outputfiles:
        collect = getattr(item, "collect", None)
        if collect is not None:
            found[getattr(item, "namePattern", repr(item))] = collect(job)
    return found
