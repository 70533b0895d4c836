"""A stored Hosts (sub)job seen as an entry of the BEX queue: its name, hosts, code, message.

Pure reads of the job (no I/O, no writes): the service's writer turns an :class:`Entry`
into files (``bex.files``), and rewriting a job's files from its stored state gives the
same files whenever it is done, so a crash between a commit and the write loses nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..backends.base import Handle
from ..backends.hosts.config import Hosts
from ..model.job import Job
from ..status import FINAL, history_entries
from . import codes

BEX_ID_VAR = "GANGA_LIKE_BEX_ID"  # in a BEX job's application.env: the ID of its job file
BEX_PREP_VAR = "GANGA_LIKE_BEX_PREP"  # and its Prep: command, when it has one
MASTER_DIGITS, SUBJOB_DIGITS = 8, 6


def bex_job_id(fqid: str) -> str:
    """The queue name of a Hosts (sub)job that has no BEX ID: its fqid, zero-padded so
    that names sort (lexicographically, as BEX runs them) in submission order
    (``'42'`` -> ``'00000042'``, ``'42.3'`` -> ``'00000042.000003'``)."""
    top, _, sub = fqid.partition(".")
    name = f"{int(top):0{MASTER_DIGITS}d}"
    return f"{name}.{int(sub):0{SUBJOB_DIGITS}d}" if sub else name


def _bex_env(job: Job, name: str) -> str:
    top = job.master or job
    env: Mapping[str, str] = getattr(top.application, "env", None) or {}
    return str(env.get(name, ""))


def bex_id_of(job: Job) -> str:
    """The ID of the BEX job file ``job`` (or its master) was made from ('' if none)."""
    return _bex_env(job, BEX_ID_VAR)


def queue_name(job: Job) -> str:
    """The name of ``job``'s files in the queue: its BEX ID, else :func:`bex_job_id`."""
    return bex_id_of(job) or bex_job_id(job.fqid)


def is_queued_job(job: Job) -> bool:
    """Whether ``job`` belongs in the BEX queue: a Hosts job (or subjob) that runs."""
    return isinstance((job.master or job).backend, Hosts)


def hosts_of(job: Job) -> tuple[str, ...]:
    """Where the subjob is queued: the hosts its current attempt's run uses (once it has
    them), else the one host it names; none while the scheduler may still choose (a
    label, several hosts). An earlier attempt's entry stays where it ran, as it ended."""
    if job.handle:
        handle = Handle.from_tuple(job.handle)
        if handle.host and handle.attempt == job.submit_counter:  # this attempt's hosts
            return tuple(h for h in handle.host.split(",") if h)
    named = tuple(getattr(job.backend, "hosts", ()) or ())
    return named if len(named) == 1 else ()


@dataclasses.dataclass(frozen=True)
class Entry:
    """One subjob as the queue shows it."""

    fqid: str
    name: str  # the queue's job-id: the file names under jobs/ and hosts/<host>/
    hosts: tuple[str, ...]
    status: str
    detail: str
    code: str
    message: str
    time: float  # of the last status change
    attempt: int
    workdir: str
    prep: bool  # a BEX job with a Prep: command (PREP until its run says it ended)
    # The last status changes, oldest first: (time, code, note) each, the codes their
    # statuses give (so the log can say a code the job passed between two writes).
    steps: tuple[tuple[float, str, str], ...] = ()

    @property
    def final(self) -> bool:
        """Its attempt is over (a NOPING of a running subjob whose node is lost is not)."""
        return self.status in _FINAL


def stat_text(when: float, code: str, message: str) -> str:
    """A ``.stat`` file: the seed's headers ``Time:`` (a UNIX timestamp), ``Status:`` and,
    when there is one, ``Message:`` (on one line); no body."""
    text = f"Time: {int(when)}\nStatus: {code}\n"
    message = " ".join(message.split())
    return text + (f"Message: {message}\n" if message else "")


def parse_stat(text: str) -> dict[str, str]:
    """A ``.stat`` file's fields (``{'Time': ..., 'Status': ..., 'Message': ...}``)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key] = value
    return fields


_FINAL = frozenset(s.value for s in FINAL)
_LEAF = {status for status, _detail in codes.CODE_OF}  # the statuses the table covers
STEPS = 8  # how many of a leaf's last status changes an entry carries


def entry_of(job: Job) -> Entry:
    """The queue's view of a stored leaf (a subjob, or a job without subjobs)."""
    history = history_entries(job.history[-STEPS:])
    last = history[-1] if history else None
    status = job.status.value
    detail = job.backend_detail
    code = codes.code_for(status, detail)
    note = last.note if last is not None else ""
    if status in _FINAL:  # how it ended: the final change's note
        message = note or detail
    else:  # where it is: the backend's words (why it waits), else the detail's code's word
        by_detail = code != codes.code_for(status)
        message = job.backend_note or (detail if by_detail else note) or detail
    prep = bool(_bex_env(job, BEX_PREP_VAR))
    return Entry(job.fqid, queue_name(job), hosts_of(job), status, detail,
                 code, message,
                 last.when if last is not None else (job.created or 0.0), job.submit_counter,
                 job.workdir, prep,
                 tuple((e.when, codes.code_for(e.dst), e.note) for e in history if e.dst in _LEAF))
