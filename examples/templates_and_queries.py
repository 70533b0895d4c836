"""Templates, and finding jobs again with jobs(...) and jobs.select(...)."""
from ganga_like.gpi import *  # noqa: F401,F403  (not needed under `ganga-like run`)

t = JobTemplate()
t.name = 'sim'
t.application = Executable(exe='/bin/sh', args=['-c', 'echo seed $SEED'])
t.backend = Local(concurrency=2)
print('templates:', len(templates))

made = []
for seed in range(3):
    j = Job(t)                                  # a fresh job from the template
    j.application.env = {'SEED': str(seed)}     # assign a new dict; never edit in place
    j.comment = f'seed {seed}'
    j.submit()
    made.append(j)

bad = Job(t, name='sim-broken')
bad.application.exe = '/no/such/program'
try:
    bad.submit()                                # refused at once, as Ganga does
except ApplicationConfigurationError as error:  # Ganga's name; also a JobError
    print('refused:', error)
print('still', bad.status)                      # new: fix it and submit again

failing = Job(t, name='sim-failing')
failing.application.args = ['-c', 'echo no luck >&2; exit 3']
failing.submit()

runMonitoring(timeout=60)                       # every active job is final now

print('first:', jobs(made[0].id).comment, jobs(made[0].id).status)
print('newest:', jobs[-1].name)
print('new:', [j.name for j in jobs.select(status='new')])
print('completed sims:', [j.id for j in jobs.select(name='sim', status='completed')])
print('failed:', [(j.name, j.reason) for j in jobs.select(status='failed')])
print(jobs)
