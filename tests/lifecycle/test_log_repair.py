"""The queue log is complete after a crash between a commit and the log append."""

from __future__ import annotations

from ganga_like.engine.core import Engine, set_default_session
from ganga_like.engine.log_repair import complete_queue_log, missing_changes

from .helpers import sh_job


def _entries(path: str) -> list[tuple[str, str]]:
    with open(path) as handle:
        return [tuple(line.rstrip("\n").split(" ", 5)[3:5]) for line in handle if line.strip()]


def test_lines_lost_after_commits_are_rebuilt_from_the_history(session, gl_config):
    gone = sh_job(["true"])
    session.submit(gone)
    session.wait([gone], timeout=60)
    job = sh_job(["true"] * 20)
    session.submit(job)
    session.wait([job], timeout=60)
    session.remove(gone)  # its earlier lines are older than the 30 lost below
    log = gl_config.queue_log
    before = _entries(log)
    assert (str(gone.id), "removed") in before
    # A crash after the commits of the last changes and before their log lines:
    with open(log) as handle:
        lines = handle.readlines()
    with open(log, "w") as handle:
        handle.writelines(lines[:-30])
    session.close()
    set_default_session(None)

    fresh = Engine(gl_config)
    try:
        assert missing_changes(fresh)
        complete_queue_log(fresh)
        after = _entries(log)
        assert sorted(set(after)) == sorted(set(before))
        assert complete_queue_log(fresh) == 0  # complete: nothing more to add
        # Tombstones are kept while they are in the compared window, then dropped.
        assert list(fresh.main.root.removals.keys()) == [gone.id]

        def age() -> None:
            when, *rest = fresh.main.root.removals[gone.id]
            fresh.main.root.removals[gone.id] = (when - 3600, *rest)

        fresh.write(age)
        complete_queue_log(fresh)
        assert len(fresh.main.root.removals) == 0
    finally:
        fresh.close()
