"""GANGA_LIKE_READ_ONLY=1 does what the docs say (issue 20, point 2): a read-only client
reads every job and is refused every change and every verb that changes jobs, in one
line each, from the GPI and from the command; the banner and `service status` say so.
A real service, a read-write client beside it."""

from __future__ import annotations

import json

from tests.service.test_service import client
from tests.test_cli import run_gl

READ_ONLY = {"GANGA_LIKE_READ_ONLY": "1"}


def test_a_read_only_client_reads_everything_and_changes_nothing(root):
    made = client(root, """
        j = Job(application=Executable(exe='/bin/sleep', args=['60']), name='kept')
        j.submit()
        print('made', j.id)
    """)
    assert made.returncode == 0, made.stderr
    job_id = made.stdout.split()[-1]
    reader = client(root, f"""
        from ganga_like.errors import GangaLikeError
        from ganga_like.gpi import session
        from ganga_like.gpi.ipython import banner
        j = jobs({job_id})
        print('read', j.name, j.status.value, len(jobs))
        for name, call in [('kill', j.kill), ('remove', j.remove), ('resubmit', j.resubmit),
                           ('force_status', lambda: j.force_status('failed')),
                           ('new job', Job), ('edit', lambda: setattr(j, 'comment', 'x'))]:
            try:
                call()
                print('ACCEPTED', name)
            except GangaLikeError as exc:
                assert '\\n' not in str(exc)
                print('refused', name, '|', exc)
        print('banner', banner(session()).splitlines()[0])
        print('after', jobs({job_id}).status.value, jobs({job_id}).comment == '')
    """, env_extra=READ_ONLY)
    assert reader.returncode == 0, reader.stderr
    lines = reader.stdout.splitlines()
    assert lines[0] == "read kept running 1", reader.stdout
    refused = [line for line in lines if line.startswith("refused ")]
    assert len(refused) == 6 and not any("ACCEPTED" in line for line in lines), reader.stdout
    assert all("this session is read-only" in line and "GANGA_LIKE_READ_ONLY=1" in line
               for line in refused), refused
    assert "so kill() is refused" in refused[0] and "storing a new Job" in refused[4]
    assert "(read-only)" in next(line for line in lines if line.startswith("banner "))
    assert lines[-1] == "after running True"
    # The command: reads answer, changes are one line (exit 1), and status says so.
    listed = run_gl(root, "jobs", "--json", check_clean=False, env_extra=READ_ONLY)
    assert [row["status"] for row in json.loads(listed.stdout)] == ["running"]
    kill = run_gl(root, "kill", job_id, check_clean=False, env_extra=READ_ONLY)
    assert kill.returncode == 1 and kill.stderr.count("\n") == 1
    assert "so kill() is refused" in kill.stderr
    status = run_gl(root, "service", "status", check_clean=False, env_extra=READ_ONLY)
    assert "this client: read-only (GANGA_LIKE_READ_ONLY=1)" in status.stdout
    # The read-write client is not affected by its read-only neighbour.
    assert run_gl(root, "kill", job_id, check_clean=False).stdout.strip() == f"{job_id}: killed"
