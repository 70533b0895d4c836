"""BEX job files: mail-like headers, a blank line, the body. Pure: text in, text out.

::

    ID: 2026-12-06-build
    Subject: build the tree
    Prep: mkdir -p /tmp/build

    cd /tmp/build && make

Headers are ``<keyword>:<spaces><value>``, one line each (no continuation lines),
keywords case-sensitive, each at most once. ``ID`` (required) names the job in its
queue and so in file names; ``Subject`` is shown to people; ``Prep`` is a command run
before the body (the subjob shows ``PREP`` meanwhile). The body is the shell script
run on each host, kept byte for byte. Anything else is refused in one line
(:class:`~ganga_like.errors.BexJobFileError`): which line, what is wrong, what is valid.
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import BexJobFileError

ID, SUBJECT, PREP = "ID", "Subject", "Prep"
HEADERS = (ID, SUBJECT, PREP)  # in the order they are written
ID_FORM = "letters, digits, '.', '_' or '-', not starting with '.', at most 100 characters"
_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}\Z")
_HEADER_RE = re.compile(r"([^:\s]+):(?:[ \t]+|\Z)(.*)\Z")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class BexJob:
    """One job file: its ID, subject, optional Prep command and body (a shell script)."""

    id: str
    body: str
    subject: str = ""
    prep: str = ""

    def text(self) -> str:
        """The job file's text (headers in :data:`HEADERS` order; empty ones left out)."""
        return format_job(self)


def check_id(job_id: str, source: str = "ID") -> str:
    """``job_id`` if it can name a job in a queue (and so a file), else one line why."""
    if not _ID_RE.match(job_id):
        raise BexJobFileError(source, 0, f"ID {job_id!r} is not valid: use {ID_FORM}")
    return job_id


def format_job(job: BexJob) -> str:
    values = {ID: job.id, SUBJECT: job.subject, PREP: job.prep}
    head = "".join(f"{key}: {values[key]}\n" for key in HEADERS if values[key])
    return f"{head}\n{job.body}"


def parse_job(text: str | bytes, source: str = "<job file>") -> BexJob:
    """The job a job file describes; :class:`BexJobFileError` (one line) if malformed."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BexJobFileError(source, 0, f"not UTF-8 text (byte {exc.start})") from None
    head, blank, body = text.partition("\n\n")
    if text.startswith("\n"):
        head, blank, body = "", "\n", text[1:]
    if not blank:
        raise BexJobFileError(source, 0, "no blank line: headers, then an empty line, then the "
                                         "body (the commands to run)")
    values = _headers(head.split("\n") if head else [], source)
    if ID not in values:
        raise BexJobFileError(source, 0, "no ID header (ID: <job-id>, unique in the queue)")
    check_id(values[ID], f"{source}, line {list(values).index(ID) + 1}")
    if not body.strip():
        raise BexJobFileError(source, head.count("\n") + 3 if head else 2,
                              "the body is empty: nothing to run")
    return BexJob(values[ID], body, values.get(SUBJECT, ""), values.get(PREP, ""))


def read_job_file(path: str) -> str:
    """The text of the job file at ``path``, checked (:func:`parse_job`); one line if it
    cannot be read or is malformed."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise BexJobFileError(path, 0, f"cannot be read: {exc.strerror or exc}") from None
    parse_job(data, path)
    return data.decode("utf-8")


def _headers(lines: list[str], source: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if line[:1] in (" ", "\t"):
            raise BexJobFileError(source, number, "a line that continues a header: "
                                                  "headers are one line each")
        match = _HEADER_RE.match(line)
        if match is None:
            raise BexJobFileError(source, number, f"{line[:40]!r} is not a header "
                                                  "(<keyword>: <value>)")
        key, value = match.group(1), match.group(2).strip()
        if key not in HEADERS:
            raise BexJobFileError(source, number, f"unknown header {key!r}; the headers are "
                                                  f"{', '.join(HEADERS)} (case matters)")
        if key in values:
            raise BexJobFileError(source, number, f"header {key!r} is given twice")
        if _CONTROL_RE.search(value):
            raise BexJobFileError(source, number, f"header {key!r} holds a control character")
        if not value:
            raise BexJobFileError(source, number, f"header {key!r} has no value")
        values[key] = value
    return values
