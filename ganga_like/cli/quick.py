"""``ganga-like submit -- CMD ARGS...``: a job from the shell, as ``sbatch --wrap`` or
HTCondor's ``queue ... from`` give one; and ``peek --follow``, as ``tail -f``.

``--split FILE`` makes one subjob per non-empty line of FILE, its words (split as a
shell does, without running one) added after ARGS; ``#`` starts a comment line.

``submit FILE.job --hosts h1,h2`` queues a BEX job file instead (``ganga_like.bex``):
read and checked here (a malformed file is one line, and nothing is sent), queued by
the service (which refuses an ID the queue has, or an unknown host, storing nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
from typing import Any

from ..backends.runtime import trace
from ..bex.jobfile import read_job_file
from ..model.application import Executable
from ..model.job import Job
from ..model.splitters import ArgSplitter
from ..status import ACTIVE
from ..textfile import tail
from .usage import EXIT_OK, UsageError

FOLLOW_POLL = 0.5  # seconds between looks at a followed file and its job


def split_rows(path: str) -> list[list[str]]:
    """The argument rows of a --split file: one per non-empty, non-comment line."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise UsageError(f"--split {path!r}: {exc.strerror or exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append(shlex.split(line))
        except ValueError as exc:
            raise UsageError(f"--split {path!r} line {number}: {exc}") from None
    if not rows:
        raise UsageError(f"--split {path!r} has no argument lines (one per subjob)")
    return rows


def command_of(args: argparse.Namespace) -> list[str]:
    """The program and its arguments, after ``--``."""
    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("no command given: ganga-like submit [options] -- PROGRAM [ARGS...]")
    return command


@dataclasses.dataclass(frozen=True)
class BexFile:
    path: str
    text: str
    hosts: list[str]


def bex_form(args: argparse.Namespace) -> BexFile | None:
    """``submit FILE.job --hosts h1,h2 [--wait] [--json]``: the file (read and checked
    here) and its hosts; None for the command form (``submit [options] -- PROGRAM``)."""
    rest = list(args.cmd)
    if rest[:1] == ["--"] or not (args.hosts or any(a.partition("=")[0] == "--hosts" for a in rest)):
        if args.hosts:
            raise UsageError("--hosts takes a BEX job file: ganga-like submit FILE.job --hosts h1,h2")
        return None
    form = argparse.ArgumentParser(prog="ganga-like submit", add_help=False, exit_on_error=False)
    form.add_argument("file")
    form.add_argument("--hosts", default=args.hosts)
    form.add_argument("--wait", action="store_true", default=args.wait)
    form.add_argument("--json", action="store_true", default=args.json)
    try:
        given, extra = form.parse_known_args(rest)
    except argparse.ArgumentError as exc:
        raise UsageError(f"submit FILE.job --hosts h1,h2: {exc}") from None
    if extra or args.name or args.split:
        what = " ".join(extra) or ("--name" if args.name else "--split")
        raise UsageError(f"submit FILE.job --hosts h1,h2 takes no {what} (a BEX job file "
                         "names itself: its ID and Subject)")
    args.wait, args.json = given.wait, given.json
    text = read_job_file(given.file)  # unreadable or malformed: one line here, nothing sent
    return BexFile(given.file, text, [h.strip() for h in given.hosts.split(",")])


def build_job(args: argparse.Namespace) -> Any:
    """The job ``submit`` makes (not stored yet: the model's classes, not the GPI's,
    which store a job in the default session as it is made), from the command line."""
    command = command_of(args)
    job = Job(application=Executable(exe=command[0], args=command[1:]), name=args.name or "")
    if args.split:
        job.splitter = ArgSplitter(args=[[*command[1:], *row] for row in split_rows(args.split)])
    return job


def follow(session: Any, job: Any, name: str, lines: int, out: Any = None) -> int:
    """``tail -f`` of a job's output file: its last ``lines`` lines, then what is added,
    until the job is final and nothing more comes. Read here, on this machine."""
    out = out or sys.stdout
    path = os.path.join(job.workdir, "output", name)
    if name in trace.EMPTY_OUTPUTS and trace.tidied(job.workdir):
        return 0  # it ended with 0 and wrote nothing: its directory was tidied away
    if not os.path.isdir(os.path.dirname(path)):
        raise UsageError(f"--follow reads the job's output on this machine, and {path} is "
                         "not here; peek without --follow asks the service")
    try:
        text, offset = tail(path, lines)
    except FileNotFoundError:
        text, offset = "", 0
    out.write(text)
    out.flush()
    while True:
        session.refresh()
        final = job.status not in ACTIVE
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            out.write(chunk.decode(errors="replace"))
            out.flush()
        elif final:
            return EXIT_OK
        time.sleep(FOLLOW_POLL)
