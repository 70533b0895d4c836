"""Completing the queue log after a crash, from the history the database keeps.

Log lines are appended after the commit that made the changes, so a crash
between the two leaves the database right and the log short. At start-up (before
recovery changes anything), every change recorded in the last minutes of the log is
looked up in the histories of the jobs that were active (``active_ids`` holds
every job active since the last recovery) and in the tombstones of removed jobs;
those the log lacks (counting repeats) are appended, in time order. Tombstones
older than that window are dropped then.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..model.lifecycle import Change
from ..status import history_entries

if TYPE_CHECKING:  # pragma: no cover
    from ..store_session import StoreSession

TAIL_BYTES = 16 << 20  # the end of the log that is read
# How far before the log's last line changes are compared: a batch's changes carry the
# backends' event times, which may be earlier than lines appended before them.
WINDOW = 300.0


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def log_window(path: str) -> tuple[float, Counter]:
    """The start of the window compared (``WINDOW`` seconds before the log's last line;
    0: no log) and how often each (stamp, fqid, status) occurs in the log within it."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - TAIL_BYTES))
            lines = handle.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return 0.0, Counter()
    parsed = []
    for line in lines:
        parts = line.split(" ", 5)
        if len(parts) >= 5:
            stamp = f"{parts[0]} {parts[1]}"
            try:
                when = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
            except ValueError:
                continue
            parsed.append((when, stamp, parts[3], parts[4]))
    if not parsed:
        return 0.0, Counter()
    since = max(when for when, *_ in parsed) - WINDOW
    return since, Counter((stamp, fqid, status) for when, stamp, fqid, status in parsed
                          if when >= since)


def missing_changes(session: StoreSession) -> list[Change]:
    since, logged = log_window(session.config.queue_log)
    root = session.main.root
    recorded: list[Change] = []

    def look(job: Any) -> None:
        for entry in history_entries(job.history):
            if entry.when >= since:
                recorded.append(Change(entry.when, job.fqid, entry.src, entry.dst, entry.note, "",
                                       entry.cause))

    jobs: Any = root.jobs
    for top_id in list(getattr(root, "active_ids", None) or ()):
        top = jobs.get(top_id)
        if top is None:
            continue
        look(top)
        if top._subjobs is not None:
            for sub in top._subjobs.values():
                look(sub)
    for when, fqid, src, note in list((getattr(root, "removals", None) or {}).values()):
        if when >= since:
            recorded.append(Change(when, fqid, src, "removed", note, ""))
    recorded.sort(key=lambda change: change.time)
    missing = []
    for change in recorded:  # a line the log has (as often as recorded) is not missing
        key = (_stamp(change.time), change.fqid, change.target)
        if logged[key]:
            logged[key] -= 1
        else:
            missing.append(change)
    return missing


def complete_queue_log(session: StoreSession) -> int:
    """Append what the log lacks; drop tombstones it holds. Returns the lines added."""
    changes = missing_changes(session)
    if changes:
        session.queue_log.append(changes)
    removals = getattr(session.main.root, "removals", None)
    if removals is not None and len(removals):
        since, _ = log_window(session.config.queue_log)

        def prune() -> None:
            for key, (when, *_rest) in list(removals.items()):
                if when < since:
                    del removals[key]

        session.write(prune, note="queue log: drop tombstones the log holds")
    return len(changes)


__all__ = ["complete_queue_log", "missing_changes"]
