"""BEX status codes, and the one table from a subjob's status and backend detail to them.

The codes are the seed's (BEX's ``NOTES``): what a person reads in a ``.stat`` file and
in the queue's ``log``. A subjob's code is not stored: it is derived from what is
stored (its status and its backend detail, Autotest's word) by :data:`CODE_OF`, so
files rewritten from the database after a crash say what the database says.
docs/backends.md shows both tables (generated; ``tests/unit/test_bex_codes.py``
checks the copies).
"""

from __future__ import annotations

from typing import NamedTuple

from ..backends.runtime import runs as rs
from ..status import Status

NEW, PREP, SEND, RUN, OK, FAILED = "NEW", "PREP", "SEND", "RUN", "OK", "FAILED"
NOPING, NOXFER, INTERR = "NOPING", "NOXFER", "INTERR"
PING, LOCKED, INIT, DONE = "PING", "LOCKED", "INIT", "DONE"


class Code(NamedTuple):
    where: str  # where it appears: a job's .stat and the log, or the log only (a host's)
    meaning: str


JOB, HOST = "job (.stat and log)", "host (log only)"

CODES: dict[str, Code] = {
    NEW: Code(JOB, "accepted, not run yet (also while it waits for its host)"),
    PING: Code(HOST, "the host is being checked (Autotest's Verifying)"),
    LOCKED: Code(HOST, "the host is held for a subjob that waits for its other hosts (Pending)"),
    INIT: Code(HOST, "the host is ready; the job is being started there"),
    SEND: Code(JOB, "the job is being started on the host"),
    PREP: Code(JOB, "running: its `Prep:` command runs, before the body"),
    RUN: Code(JOB, "running"),
    OK: Code(JOB, "finished with exit code 0"),
    FAILED: Code(JOB, "ended with a non-zero exit code, or was killed (the message says which)"),
    NOPING: Code(JOB, "the host does not answer: its Ray node is lost, or the run was lost with it"),
    NOXFER: Code(JOB, "the job could not be started on the host (it never ran)"),
    INTERR: Code(JOB, "an internal error: ganga_like lost track of it (status unknown)"),
    DONE: Code(HOST, "the host is done with the job (its run ended there)"),
}

ANY = "*"  # any backend detail
RUNNING_WITH_PREP = "running, Prep"  # the pseudo-detail of a run whose Prep: has not ended

# (status, backend detail word) -> BEX code; the detail ANY matches what no row names.
CODE_OF: dict[tuple[str, str], str] = {
    (Status.NEW.value, ANY): NEW,
    (Status.SUBMITTING.value, ANY): NEW,
    (Status.SUBMITTED.value, ANY): NEW,
    (Status.SUBMITTED.value, rs.STARTING_DETAIL): SEND,
    (Status.RUNNING.value, ANY): RUN,
    (Status.RUNNING.value, RUNNING_WITH_PREP): PREP,
    (Status.RUNNING.value, rs.NODE_LOST_DETAIL): NOPING,
    (Status.COMPLETING.value, ANY): RUN,
    (Status.COMPLETED.value, ANY): OK,
    (Status.FAILED.value, ANY): FAILED,
    (Status.FAILED.value, rs.LOST_DETAIL): NOPING,
    (Status.FAILED.value, rs.QUEUED_DETAIL): NOXFER,
    (Status.FAILED.value, rs.VERIFYING_DETAIL): NOXFER,
    (Status.FAILED.value, rs.STARTING_DETAIL): NOXFER,
    (Status.FAILED.value, rs.PENDING_DETAIL): NOXFER,
    (Status.KILLED.value, ANY): FAILED,
    (Status.UNKNOWN.value, ANY): INTERR,
    (Status.COMPLETED_FROZEN.value, ANY): OK,
    (Status.FAILED_FROZEN.value, ANY): FAILED,
}

# What a host's line in the log says when a subjob's code becomes the key: the host
# codes are not tied to a job (the seed's), they say what the host does meanwhile.
HOST_LINE_OF: dict[tuple[str, str], str] = {
    (Status.SUBMITTED.value, rs.VERIFYING_DETAIL): PING,
    (Status.SUBMITTED.value, rs.PENDING_DETAIL): LOCKED,
    (Status.SUBMITTED.value, rs.STARTING_DETAIL): INIT,
}


def detail_word(detail: str) -> str:
    """The table's word of a backend detail (``Node lost: h1, ...`` -> ``Node lost``)."""
    return detail.split(":", 1)[0].strip()


def code_for(status: str, detail: str = "") -> str:
    """The BEX code of a subjob in ``status`` with backend ``detail``."""
    word = detail_word(detail)
    code = CODE_OF.get((status, word)) or CODE_OF.get((status, ANY))
    if code is None:
        raise KeyError(f"no BEX code for status {status!r}; the table covers: "
                       f"{', '.join(sorted({s for s, _ in CODE_OF}))}")
    return code


def host_line_for(status: str, detail: str = "") -> str:
    """The host code the log gets when a subjob reaches ``status``/``detail`` ('' none)."""
    return HOST_LINE_OF.get((status, detail_word(detail)), "")


def codes_markdown() -> str:
    """The BEX codes as Markdown (docs/backends.md quotes it)."""
    rows = ["| code | where | meaning |", "|---|---|---|"]
    rows += [f"| {name} | {code.where} | {code.meaning} |" for name, code in CODES.items()]
    return "\n".join(rows)


def mapping_markdown() -> str:
    """The table from status and detail to BEX code, as Markdown (docs/backends.md)."""
    rows = ["| status | backend detail | BEX code | host line in the log |", "|---|---|---|---|"]
    for (status, word), code in CODE_OF.items():
        host = HOST_LINE_OF.get((status, word), "")
        shown = "any other" if word == ANY else word
        rows.append(f"| {status} | {shown} | {code} | {host} |")
    extra = [key for key in HOST_LINE_OF if key not in CODE_OF]
    rows += [f"| {status} | {word} | {code_for(status, word)} | {HOST_LINE_OF[(status, word)]} |"
             for status, word in extra]
    return "\n".join(rows)
