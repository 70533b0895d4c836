"""Ganga's idioms a first script relies on (issue 19), on a real session (FileStorage,
the test Ray, real processes), driven through the GPI as Ganga's tutorial does."""

from __future__ import annotations

from ganga_like.gpi import Executable, Job, LocalFile


def _stored(session, job_id):
    """The job as another connection reads it: what was committed."""
    conn = session.repository.connect()
    try:
        job = conn.jobs.get(job_id)
        return list(job.application.args), [f.namePattern for f in job.inputfiles]
    finally:
        conn.close()


def test_lists_edited_in_place_are_saved_and_used_by_the_run(session, tmp_path):
    (tmp_path / "in.txt").write_text("data\n")
    j = Job(application=Executable(exe="/bin/echo", args=["a"]))
    j.application.args.append("b")
    j.application.args[0] = "first"
    j.application.args += ["last"]
    j.inputfiles += [LocalFile(str(tmp_path / "in.txt"))]
    assert _stored(session, j.id) == (["first", "b", "last"], [str(tmp_path / "in.txt")])
    j.submit()
    assert j.wait(timeout=60) == "completed"
    assert j.peek("stdout") == "first b last\n"
