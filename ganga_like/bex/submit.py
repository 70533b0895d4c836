"""A BEX job file made into a job: one master, one subjob per host, the body run by ``sh``.

The body runs as a shell script (``/bin/sh -c``) in the subjob's output directory;
a ``Prep:`` command runs first, in the same shell, and the script then appends a
``PREP_DONE`` line to the run's status file, so the queue shows ``PREP`` until then.
A failing Prep ends the subjob with its exit code (the body does not run). The
application's environment carries the job's ID (and its Prep), which is how a stored
job is known as a BEX job (``entry.bex_id_of``) and what its payload may read.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..backends.hosts.config import Hosts
from ..errors import BexSubmitRefused
from ..model.application import Executable
from ..model.job import Job
from ..model.splitters import GenericSplitter
from .entry import BEX_ID_VAR, BEX_PREP_VAR, queue_name
from .files import PREP_DONE
from .jobfile import BexJob, format_job

SHELL = "/bin/sh"


def script_of(job: BexJob) -> str:
    """The shell script a subjob runs: Prep (if any), its end noted, then the body."""
    if not job.prep:
        return job.body
    return (
        'bex_status="$PWD/../status"\n'
        f"bex_prep() {{\n{job.prep}\n}}\n"
        'bex_prep || { bex_rc=$?; echo "Prep: failed with exit code $bex_rc" >&2; exit $bex_rc; }\n'
        f"printf '%s {PREP_DONE} prep exited 0\\n' \"$(date +%Y-%m-%dT%H:%M:%S.%6N%z)\" "
        '>> "$bex_status"\n'
        f"{job.body}")


def check_hosts(job_id: str, hosts: Sequence[str], known: Sequence[str]) -> list[str]:
    """The hosts asked for, each once and each known to the Hosts backend; else one line."""
    hosts = [h.strip() for h in hosts]
    if not hosts or not all(hosts):
        raise BexSubmitRefused(job_id, "no host given: --hosts h1,h2 (one subjob per host)",
                               sorted(known))
    twice = sorted({h for h in hosts if hosts.count(h) > 1})
    if twice:
        raise BexSubmitRefused(job_id, f"host {twice[0]!r} is given twice", sorted(known))
    unknown = [h for h in hosts if h not in known]
    if unknown:
        shown = ", ".join(sorted(known)) or "none (no Ray node is up)"
        raise BexSubmitRefused(job_id, f"unknown host {unknown[0]!r}; the Hosts backend knows: "
                                       f"{shown}", sorted(known))
    return hosts


def job_of(bex: BexJob, hosts: Sequence[str]) -> Job:
    """The (unstored) master: one subjob per host, each on ``Hosts(hosts=[host])``."""
    env = {BEX_ID_VAR: bex.id, **({BEX_PREP_VAR: bex.prep} if bex.prep else {})}
    return Job(name=bex.subject or bex.id,
               application=Executable(exe=SHELL, args=["-c", script_of(bex), f"bex:{bex.id}"],
                                      env=env),
               backend=Hosts(hosts=[hosts[0]]),
               splitter=GenericSplitter(attribute="backend.hosts", values=[[h] for h in hosts]))


def job_text_of(job: Job) -> str:
    """The job file of a Hosts job that was not made from one: its command as the body."""
    top = job.master or job
    app = top.application
    command = shlex.join([str(app.exe), *(str(a) for a in (job.application.args or ()))])
    return format_job(BexJob(queue_name(job), command + "\n", top.name))
