"""Reading a job's output: peek() and the stderr tail shown in failure reasons."""

from __future__ import annotations

import os

from ...backends.runtime import trace
from ...errors import InvalidValue, OperationRefused
from ...model.job import Job
from ...textfile import tail
from ..context import EngineContext


def peek(ctx: EngineContext, job: Job, file: str = "stdout", lines: int = 20) -> str:
    if job._subjobs is not None:
        raise OperationRefused(job.fqid, "peek", job.status.value, master_peek_hint(job, file))
    outputdir = os.path.realpath(os.path.join(job.workdir, "output"))
    path = os.path.realpath(os.path.join(outputdir, file))
    if not path.startswith(outputdir + os.sep):
        # peek reads the job's own output, never a path elsewhere ('../..', '/etc/passwd',
        # or a link the payload planted): the service reads for whoever asks.
        raise InvalidValue("peek", "file", file, "a file in the job's output directory, "
                           "given relative to it (e.g. 'stdout', 'stderr', 'results/out.txt')")
    if not os.path.isfile(path):
        if file in trace.EMPTY_OUTPUTS and trace.tidied(job.workdir):
            return ""  # it ended with 0 and wrote nothing: its directory was tidied away
        present = sorted(os.listdir(outputdir)) if os.path.isdir(outputdir) else []
        raise InvalidValue("peek", "file", file,
                           "one of: " + (", ".join(present) if present else
                                         "(no output yet)"))
    return tail(path, lines)[0]


def master_peek_hint(job: Job, file: str) -> str:
    """Which subjob to peek, in one line: a master's runs are its subjobs' (read from the
    counts and at most the first failed subjob, never the whole tree)."""
    n = len(job.subjobs)
    example = 0
    counts = job.subjob_counts
    if counts.get("failed"):
        for sub in (job._subjobs or {}).values():  # stops at the first failed one
            if sub._status == "failed":
                example = sub.id
                break
    which = "a failed one" if counts.get("failed") else "one"
    shown = "" if file == "stdout" else repr(file)
    return (f"a master has no output of its own; peek {which} of its {n} subjobs "
            f"(ids 0..{n - 1}), e.g. jobs({job.id}).subjobs[{example}].peek({shown}), or pick "
            f"with jobs({job.id}).subjobs.select(status='failed')")


def log_tail(ctx: EngineContext, job: Job, nbytes: int = 300) -> str:
    path = os.path.join(job.workdir, "output", "stderr")
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - nbytes))
            return " ".join(handle.read().decode(errors="replace").split())
    except OSError:
        return ""



