"""Kill a running job, look at why it stopped, then remove jobs."""
import time

from ganga_like.gpi import *  # noqa: F401,F403  (not needed under `ganga-like run`)

j = Job(name='sleeper', application=Executable(exe='/bin/sleep', args=['600']))
j.submit()
deadline = time.time() + 30
while jobs(j.id).status != 'running' and time.time() < deadline:
    time.sleep(0.2)
print('before kill:', j.status)

j.kill()           # returns once the backend confirms the process tree is gone
print('after kill:', j.status)

j.remove()
print('removed; jobs named sleeper left:', len(jobs.select(name='sleeper')))
try:
    jobs(j.id)
except GangaLikeError as error:  # one clear message, never a traceback
    print('looking it up again:', error)
