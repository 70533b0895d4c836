"""ArgSplitter: one subjob per argument list; then find and resubmit the failures.

Subjob 2 fails on its first run (it exits 3) and succeeds on its second: the
kind of transient failure that ``j.subjobs.select(status='failed')`` and
``resubmit()`` are for.
"""
import os
import tempfile

from ganga_like.gpi import *  # noqa: F401,F403  (not needed under `ganga-like run`)

marker = os.path.join(tempfile.mkdtemp(prefix='gl-example-'), 'second-try')
script = ('if [ "$1" = flaky ] && [ ! -e "$2" ]; then : > "$2"; echo "first try" >&2; exit 3; fi; '
          'echo "done $1"')

j = Job(name='split-args')
j.application = Executable(exe='/bin/sh')
j.splitter = ArgSplitter(args=[['-c', script, 'sh', word, marker]
                               for word in ['alpha', 'beta', 'flaky', 'delta']])
j.backend = Local()
j.submit()
print('subjobs:', len(j.subjobs))

runMonitoring(j, timeout=60)          # waits until every subjob is final
failed = j.subjobs.select(status='failed')
print('failed:', [sj.fqid for sj in failed])
for sj in failed:
    print(f'  {sj.fqid} exit code {sj.exit_code}, stderr: {sj.peek("stderr").strip()}')

j.resubmit()                          # a master resubmits its failed subjobs
j.wait(timeout=60)
print('after resubmit:', j.status, j.subjob_counts)
for sj in j.subjobs:
    print(f'  {sj.fqid} {sj.status} {sj.peek().strip()}')
