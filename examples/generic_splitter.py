"""GenericSplitter: vary one attribute, or several together (multi_attrs)."""
from ganga_like.gpi import *  # noqa: F401,F403  (not needed under `ganga-like run`)

# One attribute: application.args takes each value in turn.
j = Job(name='generic-one')
j.application = Executable(exe='/bin/echo')
j.splitter = GenericSplitter()
j.splitter.attribute = 'application.args'
j.splitter.values = [['red'], ['green'], ['blue']]
j.submit()

# Several attributes that change together: row i of each list makes subjob i.
k = Job(name='generic-multi')
k.application = Executable(exe='/bin/sh', args=['-c', 'echo "$COLOUR $0"'])
k.splitter = GenericSplitter(multi_attrs={
    'application.args': [['-c', 'echo "$COLOUR $0"', 'one'],
                         ['-c', 'echo "$COLOUR $0"', 'two']],
    'application.env': [{'COLOUR': 'cyan'}, {'COLOUR': 'magenta'}],
})
k.submit()

runMonitoring([j, k], timeout=60)
for job in (j, k):
    print(f'job {job.id} ({job.name}): {job.status}')
    for sj in job.subjobs:
        # A subjob shows its master's application with the splitter's values applied.
        print(f'  {sj.fqid} args={list(sj.application.args)} '
              f'env={dict(sj.application.env)} -> {sj.peek().strip()}')
