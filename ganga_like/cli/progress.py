"""A live progress line while waiting on many subjobs; quiet when not a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from ..errors import WaitTimeout
from ..model.table import counts_summary
from ..status import ACTIVE

BAR_WIDTH = 30


def _counts(jobs: Sequence[Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for job in jobs:
        counts = job.subjob_counts or {job.status.value: 1}
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


def render_line(counts: dict[str, int], elapsed: float, started_done: int) -> str:
    total = sum(counts.values()) or 1
    done = sum(v for k, v in counts.items() if k not in {s.value for s in ACTIVE})
    filled = int(BAR_WIDTH * done / total)
    rate = (done - started_done) / elapsed if elapsed > 0 else 0.0
    left = (total - done) / rate if rate > 0 else float("nan")
    if done >= total:
        pace = "   all done"  # no rate or time left to guess
    elif left == left:
        pace = f"{rate:7.1f}/s {left:5.1f}s left"
    else:
        pace = "  (no rate yet)"
    return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} "
            f"{pace}  {counts_summary(counts)}")


def wait_with_progress(session: Any, jobs: Sequence[Any], timeout: float | None = None,
                       stream: Any = None) -> list[Any]:
    """Wait like ``session.wait`` and draw a progress line if ``stream`` is a terminal.
    The line is always ended before this returns or raises: what follows starts on a
    line of its own. A timeout raises ``WaitTimeout`` naming the whole wait."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return session.wait(jobs, timeout=timeout)
    start = time.monotonic()
    first = _counts(jobs)
    done0 = sum(v for k, v in first.items() if k not in {s.value for s in ACTIVE})
    try:
        while True:
            try:
                statuses = session.wait(jobs, timeout=0.25)
                stream.write("\r" + render_line(_counts(jobs), time.monotonic() - start, done0))
                return statuses
            except WaitTimeout as exc:
                if timeout is not None and time.monotonic() - start >= timeout:
                    raise WaitTimeout(timeout, list(exc.fields.get("pending", ()))) from None
            stream.write("\r" + render_line(_counts(jobs), time.monotonic() - start, done0))
            stream.flush()
    finally:
        stream.write("\n")
        stream.flush()
