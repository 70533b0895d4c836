"""Slurm from the shell, as a new user: a script submits to Slurm through the service,
`why` tells what Slurm says, the service is SIGKILLed, the next one adopts the tasks,
`kill` ends them in Slurm and `resubmit` sends one task again."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.lifecycle.helpers import wait_for
from tests.test_cli import finish_root, run_gl

pytestmark = pytest.mark.slurm

SCRIPT = """
j = Job(name='on-slurm', application=Executable(exe='/bin/sleep', args=['30']),
        backend=Slurm(conf={conf!r}, max_running=4), splitter=ArgSplitter(args=[['30']] * 20))
j.submit()
print('submitted', j.id, len(j.subjobs))
"""


def _listed(root, job_id: str, timeout: float = 90) -> dict:
    """The job as ``ganga-like jobs --json`` lists it."""
    listed = run_gl(root, "jobs", "--json", check_clean=False, timeout=timeout)
    (job,) = [j for j in json.loads(listed.stdout) if j["fqid"] == job_id]
    return job


def _active(slurm, root) -> list[str]:
    """The tasks Slurm runs or holds for the repository at ``root`` (an array runs in its
    master's folder there): the session's Slurm runs other tests' tasks too."""
    out = slurm.run("squeue", "-h", "-r", "-t", "PD,R,CG", "-o", "%i|%Z").stdout
    ours = os.path.realpath(root) + os.sep
    return [task for task, folder in (line.split("|", 1) for line in out.splitlines())
            if os.path.realpath(folder).startswith(ours)]


def test_a_job_on_slurm_from_the_shell_survives_a_service_sigkill(tmp_path, slurm):
    root = tmp_path / "gl"
    script = tmp_path / "submit.py"
    script.write_text(SCRIPT.format(conf=slurm.conf))
    job_id = ""
    try:
        result = run_gl(root, "run", str(script), check_clean=False, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        job_id = result.stdout.split()[1]
        assert result.stdout.split()[:3] == ["submitted", job_id, "20"]

        said = "Slurm PENDING (JobArrayTaskLimit): its array runs at most Slurm(max_running=...)"
        wait_for(lambda: said in run_gl(root, "why", job_id, check_clean=False).stdout, 60, 0.5)
        # Slurm starts the first tasks when it gets to them (on a loaded machine, after
        # the others were already recorded pending): the kill comes once one is recorded.
        wait_for(lambda: _listed(root, job_id)["status"] == "running", 60, 0.5)

        with open(root / "service.json") as handle:
            os.kill(json.load(handle)["pid"], signal.SIGKILL)
        job = _listed(root, job_id, timeout=120)  # read through a new service
        assert job["status"] == "running", job
        assert len(_active(slurm, root)) == 20  # nothing was lost or sent twice

        killed = run_gl(root, "kill", job_id, check_clean=False, timeout=120)
        assert killed.returncode == 0 and "killed 20 active subjob(s)" in killed.stdout, killed
        assert _active(slurm, root) == []

        again = run_gl(root, "resubmit", f"{job_id}.3", check_clean=False, timeout=120)
        assert again.returncode == 0, again.stderr
        active = _active(slurm, root)
        assert len(active) == 1 and active[0].endswith("_3"), active  # one task: subjob 3
        run_gl(root, "kill", job_id, check_clean=False, timeout=120)
        assert _active(slurm, root) == []
    finally:
        if job_id:  # whatever failed, nothing of the job may go on running
            run_gl(root, "kill", job_id, check_clean=False, timeout=120)
        finish_root(root, what="the Slurm shell test's service")
