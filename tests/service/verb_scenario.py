"""Every job verb of the table, run through one session (an in-process Engine, or a
ClientSession in a script of its own): what each returned, described.

``tests/service/test_verb_table.py`` runs it through both and compares.
"""

from __future__ import annotations

import time
from typing import Any

from ganga_like.errors import BexSubmitRefused
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.session import JOB_VERBS
from ganga_like.status import Status, history_entries


def describe(value: Any) -> str:
    """A value's shape: ``None``, ``Job``, ``str``, ``list[Status]``, ``dict(a,b)`` ..."""
    if value is None:
        return "None"
    if isinstance(value, Job):
        return "Job"
    if isinstance(value, Status):
        return "Status"
    if isinstance(value, dict):
        return "dict(" + ",".join(sorted(value)) + ")"
    if isinstance(value, list):
        return "list[" + "|".join(sorted({describe(item) for item in value})) + "]"
    return type(value).__name__


def cause_of(job: Job, status: str) -> str:
    """How the history of ``job`` (or of its first subjob) tells why it last became ``status``."""
    leaf = job.subjobs[0] if len(job.subjobs) else job
    entry = [e for e in history_entries(leaf.history) if e.dst == status][-1]
    return str(entry.cause)


def every_verb(session: Any, sleep: str = "300") -> dict[str, dict[str, Any]]:
    """Run each job verb of the table once through ``session``; for each: the shape of
    what it returned, whether that is the table's shape, and the job's status after it
    (where it does not depend on timing)."""
    seen: dict[str, dict[str, Any]] = {}

    def note(name: str, value: Any, job: Job | None = None, timed: bool = False) -> Any:
        seen[name] = {"shape": describe(value), "declared": JOB_VERBS[name].result.matches(value, job),
                      "status": None if job is None or timed else job.status.value}
        return value

    def new_job(*args: str, **attributes: Any) -> Job:
        return session.register(Job(application=Executable(exe=args[0], args=list(args[1:])),
                                    **attributes))

    def running(job: Job) -> None:
        deadline = time.monotonic() + 60
        while job.status is not Status.RUNNING:
            assert time.monotonic() < deadline, job.status
            time.sleep(0.05)

    echo = new_job("/bin/echo", "hello")
    note("submit", session.submit(echo), echo, timed=True)
    note("wait", session.wait([echo], timeout=120), echo)
    text = note("peek", session.peek(echo), echo)
    assert text == "hello\n", text
    note("force_status", session.force_status(echo, "failed"), echo)
    seen["force_status"]["cause"] = cause_of(echo, "failed")
    note("resubmit", session.resubmit(echo), echo, timed=True)
    session.wait([echo], timeout=120)
    note("freeze", session.freeze(echo), echo)
    note("unfreeze", session.unfreeze(echo), echo)

    sleeper = new_job("/bin/sleep", sleep)
    session.submit(sleeper)
    running(sleeper)
    note("kill", session.kill(sleeper), sleeper)

    loose = new_job("/bin/sleep", sleep, mode="relaxed")
    session.submit(loose)
    running(loose)
    note("unmonitor", session.unmonitor(loose), loose)
    found = note("leaks", session.leaks(reap=True))
    assert [item["fqid"] for item in found] == [loose.fqid], found  # reaped: nothing left

    note("remove", session.remove(echo))

    # A BEX job file on the one host the Hosts backend knows (a refusal names it).
    try:
        session.submit_bex("ID: verbs\n\ntrue\n", ["no-such-host"])
    except BexSubmitRefused as refused:
        host = refused.fields["valid"][0]
    fqid = note("submit_bex", session.submit_bex("ID: verbs\n\ntrue\n", [host]))
    rows = note("hosts", session.hosts())
    assert [row["name"] for row in rows] == [host], rows
    assert session.wait([session.jobs.get(fqid)], timeout=120) == [Status.COMPLETED]
    assert set(seen) == set(JOB_VERBS), set(JOB_VERBS) - set(seen)
    return seen
