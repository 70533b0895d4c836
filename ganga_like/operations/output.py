"""Reading a job's output: peek() and the stderr tail shown in failure reasons."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import InvalidValue
from ..model.job import Job

if TYPE_CHECKING:  # pragma: no cover
    from ..session import Session


def peek(session: "Session", job: Job, file: str = "stdout", lines: int = 20) -> str:
    outputdir = os.path.realpath(os.path.join(job.workdir, "output"))
    path = os.path.realpath(os.path.join(outputdir, file))
    if not path.startswith(outputdir + os.sep):
        # peek reads the job's own output, never a path elsewhere ('../..', '/etc/passwd',
        # or a link the payload planted): the service reads for whoever asks.
        raise InvalidValue("peek", "file", file, "a file in the job's output directory, "
                           "given relative to it (e.g. 'stdout', 'stderr', 'results/out.txt')")
    if not os.path.isfile(path):
        present = sorted(os.listdir(outputdir)) if os.path.isdir(outputdir) else []
        raise InvalidValue("peek", "file", file,
                           "one of: " + (", ".join(present) if present else
                                         "(no output yet)"))
    return "".join(tail_lines(path, lines))


def log_tail(session: "Session", job: Job, nbytes: int = 300) -> str:
    path = os.path.join(job.workdir, "output", "stderr")
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - nbytes))
            return " ".join(handle.read().decode(errors="replace").split())
    except OSError:
        return ""


def tail_lines(path: str, lines: int) -> list[str]:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        data = handle.read().decode(errors="replace")
    return data.splitlines(keepends=True)[-lines:]

