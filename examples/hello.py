"""Hello World, as in Ganga's first tutorial page.

Run it with ``ganga-like run examples/hello.py`` (the GPI names are preloaded, as
with ``ganga hello.py``) or with ``python examples/hello.py`` (the import below
provides them; under ``ganga-like run`` it is harmless).
"""
import time

from ganga_like.gpi import *  # noqa: F401,F403  (not needed under `ganga-like run`)

j = Job()
j.name = 'hello'
j.application = Executable()
j.application.exe = '/bin/echo'
j.application.args = ['Hello', 'World']
j.backend = Local()
j.submit()

# The classic Ganga polling loop, with a guard so it can never hang forever.
deadline = time.time() + 30
while j.status != 'completed':
    if j.status in ('failed', 'killed') or time.time() > deadline:
        raise SystemExit(f'job {j.id} ended as {j.status}')
    time.sleep(0.5)

print('status:', j.status)
print('output:', j.peek().strip())
