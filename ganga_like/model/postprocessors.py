"""Postprocessors (``j.postprocessors``, category 'postprocessors'), after Ganga's.

Three kinds, told apart by the method they have:

* **checkers** -- ``check(job) -> (ok, note)`` -- run once per (sub)job whose payload
  exited 0, in its ``completing`` step: a False result makes that (sub)job
  ``failed`` with the note (``FileChecker``, ``CustomChecker``);
* **mergers** -- ``merge(master) -> (ok, note)`` -- run on a master each time it
  becomes final, combining its completed subjobs' files into
  ``master.workspace/output/`` (``TextMerger``, ``CustomMerger``);
* **notifiers** -- ``notify(master) -> (ok, note)`` -- run on a master after its
  mergers (``Notifier``).

Ganga runs a job's postprocessors in the order mergers, checkers, notifiers, all
when the master is final. Here checkers run earlier, per subjob, because their
verdict decides whether that subjob is ``completed`` or ``failed`` (which a merger
then sees and which resubmission acts on); the master-level order stays Ganga's:
mergers, then notifiers. Checkers therefore look at each subjob's own files, not at
merged output. Within one kind, the order of ``j.postprocessors`` is kept.

User code (``CustomMerger``, ``CustomChecker``, a ``Notifier`` function) is loaded
with importlib from the named file or module, never evaluated from a string.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import importlib
import importlib.util
import os
import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

from ..errors import PostProcessError
from ..status import Status
from .component import Component, Field, check_str_list

OUTPUT_DIR = "output"
Result = tuple[bool, str]


# --- checks for the fields ---------------------------------------------------------------


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"got {type(value).__name__}")
    return value


def _check_file_names(value: Any) -> tuple[str, ...]:
    """A non-empty list of names (or glob patterns) inside a job's output directory."""
    names = _check_file_list(value)
    if not names:
        raise ValueError("the list is empty")
    return names


def _check_file_list(value: object) -> tuple[str, ...]:
    """A list of names (or glob patterns) inside a job's output directory, maybe empty: a
    checker is often built first and given its files later, as Ganga allows."""
    names = check_str_list(value)
    for name in names:
        if not name or os.path.isabs(name) or ".." in name.split("/"):
            raise ValueError(f"{name!r} is not a name inside the output directory")
    return names


def _check_search_strings(value: Any) -> tuple[str, ...]:
    strings = check_str_list(value)
    if any(not s for s in strings):
        raise ValueError("an empty string matches every line")
    return strings


def _check_python_file(value: Any) -> str:
    """An existing ``.py`` file, stored as an absolute path (the monitor's cwd may differ)."""
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    if not value:
        return ""
    path = os.path.abspath(os.path.expanduser(value))
    if not path.endswith(".py"):
        raise ValueError("it does not end in .py")
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")
    return path


def _check_command(value: Any) -> tuple[str, ...]:
    return check_str_list(value)


_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def _check_callable_path(value: Any) -> str:
    """``'package.module:function'`` or ``'/path/to/file.py:function'`` (or '')."""
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    path, sep, name = value.rpartition(":")
    if not value or (_DOTTED.match(value) and not path.endswith(".py")):
        return value
    if not sep or not re.match(r"^[A-Za-z_]\w*$", name):
        raise ValueError("no ':function' at the end")
    return _check_python_file(path) + ":" + name


def _check_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("not a positive number of seconds")
    return float(value)


# --- loading user code ------------------------------------------------------------------


def _load_function(path: str, name: str) -> Callable[..., Any]:
    """``name`` from the Python file at ``path``, loaded afresh (the user may edit it)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    module_name = "ganga_like_user_" + re.sub(r"\W", "_", os.path.basename(path)[:-3])
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, name, None)
    if not callable(function):
        raise AttributeError(f"{path} defines no function {name}()")
    return function


def _resolve_callable(spec: str) -> Callable[..., Any]:
    target, _, name = spec.rpartition(":")
    if target.endswith(".py"):
        return _load_function(target, name)
    function = getattr(importlib.import_module(target), name, None)
    if not callable(function):
        raise AttributeError(f"module {target} has no function {name}()")
    return function


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _output_dir(job: Any) -> str:
    return os.path.join(job.workdir, OUTPUT_DIR)


def _subjob_list(master: Any) -> list[Any]:
    return list(master.subjobs) if getattr(master, "_subjobs", None) is not None else []


def _short(items: list[str], limit: int = 10) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- the base classes ---------------------------------------------------------------------


class PostProcessor(Component):
    """Base of everything that can go in ``j.postprocessors``."""

    _category = "postprocessors"


class Merger(PostProcessor):
    """Base of mergers: ``merge(master)`` combines the completed subjobs' files."""

    files = Field(("stdout",), _check_file_names,
                  "a non-empty list of file names in the output directory, e.g. ['stdout', 'out.txt']",
                  "which output files to merge")
    ignorefailed = Field(False, _check_bool, "True or False",
                         "merge the completed subjobs even if others failed or were killed")
    overwrite = Field(True, _check_bool, "True or False",
                      "replace an earlier merged file (False: refuse if it exists)")

    def merge(self, master: Any) -> Result:
        """Merge every name in ``files``; (False, note) at the first refusal."""
        subjobs = _subjob_list(master)
        if not subjobs:
            return True, ""  # nothing to merge: a job without subjobs is its own output
        bad = [sj.fqid for sj in subjobs if sj.status in (Status.FAILED, Status.KILLED)]
        if bad and not self.ignorefailed:
            return False, (f"{type(self).__name__} did not merge: subjobs {_short(bad)} failed "
                           f"or were killed (ignorefailed=True merges the completed ones)")
        done = [sj for sj in subjobs if sj.status is Status.COMPLETED]
        target_dir = os.path.join(master.workspace, OUTPUT_DIR)
        for name in self.files:
            sources = [(sj, os.path.join(_output_dir(sj), name)) for sj in done]
            missing = [sj.fqid for sj, path in sources if not os.path.isfile(path)]
            if missing and not self.ignorefailed:
                return False, (f"{type(self).__name__} did not merge '{name}': missing in "
                               f"subjobs {_short(missing)}")
            sources = [(sj, path) for sj, path in sources if os.path.isfile(path)]
            target = os.path.join(target_dir, name)
            ok, note = self._merge_one(master, name, sources, target)
            if not ok:
                return False, note
        return True, ""

    def _merge_one(self, master: Any, name: str, sources: list[tuple[Any, str]],
                   target: str) -> Result:  # pragma: no cover - per merger
        raise NotImplementedError

    def _refuse_existing(self, target: str) -> str:
        if not self.overwrite and os.path.exists(target):
            return (f"{type(self).__name__} did not merge: {target} exists "
                    f"(overwrite=True replaces it)")
        return ""


class Checker(PostProcessor):
    """Base of checkers: ``check(job) -> (ok, note)`` for one finished (sub)job."""

    def check(self, job: Any) -> Result:  # pragma: no cover - per checker
        raise NotImplementedError


# --- mergers ------------------------------------------------------------------------------


class TextMerger(Merger):
    """Concatenate a text file of every completed subjob into the master's output.

    ``TextMerger(files=['stdout'])`` writes ``<master workspace>/output/stdout``: a
    header line, then each subjob's file after a line naming the subjob. Refuses
    (the master's ``reason`` says why) if a subjob failed, unless ``ignorefailed``.
    """

    compress = Field(False, _check_bool, "True or False",
                     "write the merged file gzip-compressed (<name>.gz)")

    def _merge_one(self, master: Any, name: str, sources: list[tuple[Any, str]],
                   target: str) -> Result:
        if self.compress:
            target += ".gz"
        refused = self._refuse_existing(target)
        if refused:
            return False, refused
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = target + ".partial"  # renamed into place: readers never see half a merge
        try:
            self._write(master, name, sources, partial)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        os.replace(partial, target)
        return True, ""

    def _write(self, master: Any, name: str, sources: list[tuple[Any, str]], partial: str) -> None:
        opener = gzip.open if self.compress else open
        with opener(partial, "wb") as out:  # type: ignore[operator]
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"# TextMerger: '{name}' of {len(sources)} subjobs of job "
                      f"{master.fqid}, {stamp}\n".encode())
            for sub, path in sources:
                out.write(f"# ---- subjob {sub.fqid}: {path}\n".encode())
                last = b"\n"
                with (gzip.open if path.endswith(".gz") else open)(path, "rb") as src:  # type: ignore[operator]
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                        last = chunk[-1:]
                if last != b"\n":
                    out.write(b"\n")  # the next header starts on its own line


class CustomMerger(Merger):
    """Merge with your own function: ``CustomMerger(module='merge.py', files=['out.csv'])``.

    The file must define ``mergefiles(file_list, output_file)``; it is called once per
    name in ``files`` with the completed subjobs' paths and the master's output path.
    Returning ``False`` or raising marks the merge as failed.
    """

    module = Field("", _check_python_file,
                   "the path of an existing .py file defining mergefiles(file_list, output_file)",
                   "the Python file with your merge function")

    def _merge_one(self, master: Any, name: str, sources: list[tuple[Any, str]],
                   target: str) -> Result:
        if not self.module:
            return False, "CustomMerger has no module: set module='path/to/merge.py'"
        refused = self._refuse_existing(target)
        if refused:
            return False, refused
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            mergefiles = _load_function(self.module, "mergefiles")
            result = mergefiles([path for _sub, path in sources], target)
        except Exception as exc:  # the user's code: report it, do not crash the monitor
            return False, f"CustomMerger {os.path.basename(self.module)}: {_describe(exc)}"
        if result is False:
            return False, f"CustomMerger {os.path.basename(self.module)}: mergefiles returned False"
        return True, ""


# --- checkers -----------------------------------------------------------------------------


class FileChecker(Checker):
    """Fail a (sub)job whose output files contain (or lack) given strings.

    ``FileChecker(files=['stdout'], searchStrings=['ERROR'])`` fails a subjob whose
    stdout contains ERROR; with ``failIfFound=False`` it fails one whose files do
    not contain every string. Files are searched line by line; names may be glob
    patterns. ``filesMustExist`` fails a (sub)job in which a file is missing.
    """

    files = Field(("stdout",), _check_file_list,
                  "a list of file names in the output directory, e.g. ['stdout']",
                  "which output files to search (required by the time it checks, as in Ganga)")
    searchStrings = Field((), _check_search_strings,  # noqa: N815 (Ganga's name)
                          "a list of non-empty strings, e.g. ['ERROR', 'Traceback']",
                          "the strings to look for (required by the time it checks, as in Ganga)")
    failIfFound = Field(True, _check_bool, "True or False",  # noqa: N815
                        "True: fail if a string is found; False: fail if one is not found")
    filesMustExist = Field(True, _check_bool, "True or False",  # noqa: N815
                           "fail if a file is missing")

    def check(self, job: Any) -> Result:
        if not self.files:
            raise PostProcessError("FileChecker has no files, so it would check nothing; "
                                   "give some, e.g. FileChecker(files=['stdout'], ...)")
        if not self.searchStrings:
            raise PostProcessError("FileChecker has no searchStrings, so it would check nothing; "
                                   "give some, e.g. FileChecker(searchStrings=['ERROR'])")
        out_dir = _output_dir(job)
        for pattern in self.files:
            paths = sorted(p for p in glob.glob(os.path.join(glob.escape(out_dir), pattern))
                           if os.path.isfile(p))
            if not paths:
                if self.filesMustExist:
                    return False, f"FileChecker: no file '{pattern}' in {out_dir}"
                continue
            for path in paths:
                found = _strings_in(path, self.searchStrings)
                shown = os.path.relpath(path, out_dir)
                if self.failIfFound and found:
                    return False, f"FileChecker: '{found[0]}' found in {shown}"
                if not self.failIfFound:
                    absent = [s for s in self.searchStrings if s not in found]
                    if absent:
                        return False, f"FileChecker: '{absent[0]}' not found in {shown}"
        return True, ""


def _strings_in(path: str, strings: tuple[str, ...]) -> list[str]:
    """Which of ``strings`` occur in the file (streamed line by line)."""
    wanted = set(strings)
    found: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            for text in wanted - found:
                if text in line:
                    found.add(text)
            if found == wanted:
                break
    return [s for s in strings if s in found]


class CustomChecker(Checker):
    """Decide with your own function: ``CustomChecker(module='check.py')``.

    The file must define ``check(job)`` returning True (completed) or False
    (failed); an exception fails the (sub)job with its message.
    """

    module = Field("", _check_python_file,
                   "the path of an existing .py file defining check(job) -> True/False",
                   "the Python file with your check function")

    def check(self, job: Any) -> Result:
        if not self.module:
            return False, "CustomChecker has no module: set module='path/to/check.py'"
        shown = os.path.basename(self.module)
        try:
            result = _load_function(self.module, "check")(job)
        except Exception as exc:  # the user's code decides this job's fate: say why
            return False, f"CustomChecker {shown}: {_describe(exc)}"
        if not isinstance(result, bool):
            return False, (f"CustomChecker {shown}: check(job) returned "
                           f"{type(result).__name__}, expected True or False")
        return (True, "") if result else (False, f"CustomChecker {shown}: check(job) returned False")


# --- notifiers ----------------------------------------------------------------------------


PLACEHOLDERS = ("{id}", "{name}", "{status}", "{workspace}")


class Notifier(PostProcessor):
    """Tell someone a job has finished, once per master when it becomes final.

    ``Notifier(command=['notify-send', 'job {id} is {status}'])`` runs a program
    (no shell; ``{id}``, ``{name}``, ``{status}``, ``{workspace}`` in its arguments
    are replaced); ``Notifier(function='mypkg.alerts:job_done')`` or
    ``function='/path/alerts.py:job_done'`` calls a Python function with the job.
    Runs after the mergers.
    """

    command = Field((), _check_command,
                    "a list of strings, the program and its arguments, e.g. ['notify-send', 'job {id}']",
                    "a program to run")
    function = Field("", _check_callable_path,
                     "'package.module:function' or '/path/to/file.py:function'",
                     "a Python function called with the job")
    timeout = Field(30.0, _check_timeout, "a positive number of seconds, e.g. 30",
                    "how long the command may take")

    def notify(self, master: Any) -> Result:
        if not self.command and not self.function:
            return False, "Notifier has nothing to do: set command=[...] or function='module:function'"
        if self.function:
            try:
                _resolve_callable(self.function)(master)
            except Exception as exc:
                return False, f"Notifier {self.function}: {_describe(exc)}"
        if self.command:
            values = {"{id}": master.fqid, "{name}": master.name,
                      "{status}": master.status.value, "{workspace}": master.workspace}
            argv = []
            for arg in self.command:
                # Plain token replacement: str.format would let '{id.__class__}' reach
                # into objects.
                for key, value in values.items():
                    arg = arg.replace(key, str(value))
                argv.append(arg)
            try:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                      timeout=self.timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return False, f"Notifier {argv[0]}: {_describe(exc)}"
            if done.returncode != 0:
                tail = " ".join(done.stderr.decode(errors="replace").split())[-200:]
                return False, f"Notifier {argv[0]}: exit code {done.returncode} {tail}".rstrip()
        return True, ""


__all__ = ["PostProcessor", "Merger", "Checker", "TextMerger", "CustomMerger",
           "FileChecker", "CustomChecker", "Notifier"]
