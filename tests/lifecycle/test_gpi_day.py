"""A Ganga user's day through the GPI names, on a real session (FileStorage, Ray, Local):
the run attributes, times, info, the tree, peek on a master, Interactive, File, config."""

from __future__ import annotations

import datetime
import os
import socket

import pytest

from ganga_like.errors import OperationRefused, ProtectedAttributeError
from ganga_like.gpi import ArgSplitter, Executable, File, Interactive, Job, Local, config, runMonitoring


def test_a_split_job_shows_each_subjobs_run_as_ganga_does(session):
    j = Job(application=Executable(exe="/bin/sh", args=["-c", "true"]), backend=Local(),
            splitter=ArgSplitter(args=[["-c", "echo $PPID"], ["-c", "echo bad >&2; exit 3"],
                                       ["-c", "echo ok"]]))
    before = j.copy()
    assert j == before
    j.submit()
    assert runMonitoring(j, timeout=60) is True
    assert j.status == "failed" and j != before
    ok, bad = j.subjobs[0], j.subjobs[1]
    assert ok.backend.id == int(session.peek(ok).strip())  # the wrapper that ran the payload, as in Ganga
    assert (ok.backend.exitcode, bad.backend.exitcode) == (0, 3)
    assert ok.backend.actualCE == socket.gethostname()
    assert (j.backend.id, j.backend.exitcode) == (-1, None)
    assert ok.info.submit_counter == 1 and j.info.submit_counter == 1
    assert ok.info.uuid != bad.info.uuid != j.info.uuid
    assert os.path.isfile(os.path.join(ok.outputdir, "stdout"))
    assert ok.inputdir == os.path.join(ok.workdir, "input", "")
    times = [ok.time.new(), ok.time.submitted(), ok.time.running(), ok.time.final()]
    assert all(isinstance(t, datetime.datetime) for t in times)
    # (running is the backend's start time, which may precede the moment submitted was recorded)
    assert times[0] <= min(times[1:]) and max(times[:3]) <= times[3]
    assert j.time.final() >= ok.time.final()
    assert j.time.details() is None and j.time.details(1)["EXITCODE"] == 3
    assert set(j.time.details("all")) == {f"{j.id}.{i}" for i in range(3)}
    with pytest.raises(ProtectedAttributeError, match="read-only"):
        ok.backend.id = 1
    text = str(j)
    assert "exe = '/bin/sh'" in text and "subjobs = '3 subjobs: failed:1 completed:2" in text
    assert "args = ['-c', 'echo bad >&2; exit 3']" in str(bad) and "exitcode = 3" in str(bad)
    with pytest.raises(OperationRefused) as info:
        j.peek()
    message = str(info.value)
    assert "\n" not in message and f"jobs({j.id}).subjobs[1].peek()" in message
    assert "ids 0..2" in message
    j.resubmit()
    runMonitoring(j, timeout=60)
    assert bad.info.submit_counter == 2 and j.info.submit_counter == 2


def test_interactive_returns_when_done_and_shows_the_output(session, tmp_path, capsys):
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $1\n")
    script.chmod(0o755)
    j = Job(application=Executable(exe=File(str(script)), args=["interactive"]),
            backend=Interactive())
    j.submit()
    assert j.status == "completed"  # no wait: submit() returned when it had finished
    assert "hello from interactive" in capsys.readouterr().out
    assert j.backend.exitcode == 0 and j.backend.id > 0


def test_config_names_this_sessions_gangadir(session):
    assert config["Configuration"]["gangadir"] == session.config.root
    assert config.GangaLike.mode == session.config.mode
