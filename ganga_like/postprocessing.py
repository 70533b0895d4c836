"""The completing step: collect outputs, run a job's postprocessors in Ganga's order.

Checkers decide per (sub)job whether it completed or failed; mergers run on the
master once every subjob is final (they are driven by the session). Output file
patterns are collected into the (sub)job's ``output/`` directory.
"""

from __future__ import annotations

from typing import Any


def run_for_subjob(job: Any) -> tuple[bool, str]:
    """Return (ok, note) for one (sub)job that finished with exit code 0."""
    top = job.master or job
    for processor in top.postprocessors:
        check = getattr(processor, "check", None)
        if check is None:
            continue
        ok, note = check(job)
        if not ok:
            return False, note
    return True, ""
