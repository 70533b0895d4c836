"""What a Local payload inherits of its actor's signals: nothing.

A Python actor ignores SIGPIPE (CPython does at start-up) and SIGXFSZ, and its threads
may block signals. An ignored signal stays ignored across ``exec``, so a payload
started without care would run with them: ``yes | head -1`` would end with an error
instead of quietly, as it does in a terminal. The actor here runs in this process, a
CPython that ignores SIGPIPE, as the service's Ray actor does.
"""

from __future__ import annotations

import os
import signal

import pytest

from ganga_like.backends import base
from ganga_like.backends.local.actor import LocalActor
from ganga_like.backends.runtime import native

from .contract import EventLog

SIGNALS = "grep -E '^Sig(Ign|Blk)' /proc/self/status"


@pytest.mark.parametrize("wrapper", ["native", "bash"])
def test_a_payload_starts_with_no_signal_ignored_or_blocked(specs, leftover_check, wrapper):
    """A start and the follower behind it (native wrapper), or two starts (bash wrapper)."""
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # as in every CPython actor
    actor = LocalActor(concurrency=1, wrapper=native.SHELL_WRAPPER if wrapper == "bash" else None)
    try:
        jobs = specs([["/bin/sh", "-c", f"{SIGNALS}; sleep 0.3"], ["/bin/sh", "-c", SIGNALS],
                      ["/bin/sh", "-c", "yes | head -1"]])
        actor.submit(jobs)
        log = EventLog(actor)
        log.until(log.all_final([job.fqid for job in jobs]))
        for job in jobs:
            assert [(e.kind, e.exit_code) for e in log.finals()[job.fqid]] == [(base.FINISHED, 0)]
        for job in jobs[:2]:
            lines = open(os.path.join(job.workdir, "output", "stdout")).read().split()
            assert lines[0::2] == ["SigBlk:", "SigIgn:"], lines
            blocked, ignored = (int(mask, 16) for mask in lines[1::2])
            # The standard signals; 32 to 34 are the C library's own (it sets them up itself).
            # wrapper.sh runs its payload as an asynchronous command, for which bash
            # ignores INT and QUIT (a kill sends TERM, then KILL).
            shells_own = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGQUIT - 1)) if wrapper == "bash" else 0
            assert (blocked & 0x7FFFFFFF, ignored & 0x7FFFFFFF & ~shells_own) == (0, 0), lines
        assert open(os.path.join(jobs[2].workdir, "output", "stderr")).read() == ""  # no "Broken pipe"
    finally:
        actor.close()
