"""File objects for ``j.inputfiles`` and ``j.outputfiles`` (category 'files').

``LocalFile('*.txt')`` follows Ganga's LocalFile:

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
from typing import Any

from ..errors import InvalidValue
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


def stage_inputs(job: Any, workdir: str) -> list[str]:
    """Copy the input files of ``job`` (its master's, for a subjob) into ``workdir``.

    To be called by the session for each (sub)job just before it is handed to the
    backend; raises ``InvalidValue`` (one line) when an input file does not exist.
    Returns the staged paths in ``workdir/input``.
    """
    top = getattr(job, "master", None) or job
    staged: list[str] = []
    for item in top.inputfiles:
        stage = getattr(item, "stage", None)
        if stage is not None:
            staged.extend(stage(workdir))
    return staged


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
