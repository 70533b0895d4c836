"""A refused assignment from a client leaves its connection as good as before (issue 16,
point 6): a real GPI script against the real service it starts. The refusals are made
while the service is changing the same jobs (so a job left registered in the client's
transaction would hide the service's commits and conflict at the client's next write)."""

from __future__ import annotations

from tests.service.test_service import client

SCRIPT = """
    from ganga_like.errors import GangaLikeError
    from ganga_like.repository.transactions import has_changes

    def refused(obj, name, value):
        try:
            setattr(obj, name, value)
        except GangaLikeError as exc:
            assert '\\n' not in str(exc), str(exc)
        else:
            raise AssertionError(f'{name} = {value!r} was accepted')
        jar = j._p_jar
        assert not jar._registered_objects, (name, jar._registered_objects)  # ZODB's own list
        assert not has_changes(jar), name  # the public answer ganga_like uses
        assert not getattr(obj, '_p_changed', False), name

    j = Job(application=Executable(exe='/bin/sleep', args=['2']), backend=Local())
    refused(j, 'status', 'completed')          # the report's first line
    j.submit()
    refused(j, 'status', 'failed')             # while the service moves it
    refused(j.backend, 'concurrency', 2)       # a backend field after submit
    refused(j.application, 'args', ['9'])
    refused(j, 'exit_code', 0)                 # recorded by ganga_like only
    refused(j, 'fqid', '7')
    m = Job(application=Executable(exe='/bin/sleep'), backend=Local(),
            splitter=ArgSplitter(args=[['1'], ['2']]))
    m.submit()
    refused(m.subjobs[0], 'status', 'completed')
    refused(m.subjobs[1].backend, 'concurrency', 1)
    refused(m.subjobs[1].application, 'args', ['0'])
    refused(m, 'splitter', None)
    m.comment = 'edited while it runs'         # an accepted edit commits, no conflict
    # Refused verbs and in-place edits (issue 19): each one line, and the very next call
    # of the same client is answered (it once got ServiceError: ClientDisconnected).
    def refused_call(call):
        try:
            call()
        except GangaLikeError as exc:
            assert '\\n' not in str(exc), str(exc)
            assert type(exc).__name__ != 'ServiceError', str(exc)
        else:
            raise AssertionError('accepted')
        assert jobs(m.id).status.value in ('submitting', 'submitted', 'running', 'completed')
    refused_call(lambda: j.application.args.append('9'))   # in place, after submit
    refused_call(lambda: m.inputfiles.append(LocalFile('x')))
    refused_call(lambda: j.wait(timeout='soon'))
    refused_call(lambda: j.peek('../../etc/passwd'))
    refused_call(lambda: j.force_status('bogus'))
    refused_call(lambda: jobs(99999).kill())
    refused_call(lambda: Job(application=Executable(exe='sleep 6')).submit())
    refused_call(lambda: m.subjobs[0].remove())
    refused_call(lambda: jobs.remove(10))
    print('waited', j.wait(timeout=60).value, m.wait(timeout=60).value)
    print('read', j.status.value, m.status.value, m.subjobs[0].status.value, j.backend.exitcode)
    k = Job(application=Executable(exe='/bin/true'))
    k.name = 'after'
    print('new job', k.id, k.name, jobs(m.id).comment)
"""


def test_a_refused_assignment_leaves_the_client_usable(root):
    result = client(root, SCRIPT, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "waited completed completed", result.stdout
    assert lines[1] == "read completed completed completed 0", result.stdout
    assert lines[2].startswith("new job 3 after edited while it runs"), result.stdout
