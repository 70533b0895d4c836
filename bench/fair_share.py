"""Fair share and priority on Local, measured from the jobs' own times (docs/backends.md).

    .venv/bin/python -m bench.fair_share        # ~40 s; its own root, Ray and temp dirs

1. *fair share*: ``Local(concurrency=2)``; job "big" of 10 subjobs of ``sleep 3``, then,
   0.5 s later, job "small" of one ``echo``. First in, first out, small would wait for
   five rounds of big (≈15 s); shared between jobs, it takes the next free slot.
2. *priority*: while big2 (4 × ``sleep 2``) holds both slots, "low" (priority 0,
   3 × ``sleep 1``) and then "high" (priority 10, 3 × ``sleep 1``) wait: high's subjobs
   start before low's, though submitted later.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time


def _job(name: str, command: str, count: int, priority: int = 0):  # type: ignore[no-untyped-def]
    from ganga_like.backends.local.config import Local
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.splitters import ArgSplitter

    return Job(name=name, application=Executable(exe="/bin/sh", args=["-c", command]),
               backend=Local(concurrency=2), splitter=ArgSplitter(args=[["-c", command]] * count),
               priority=priority)


def _started(job) -> list[float]:  # type: ignore[no-untyped-def]
    return sorted(sj.time.running().timestamp() for sj in job.subjobs)


def main() -> None:
    root = tempfile.mkdtemp(prefix="gl-fair-")
    os.environ["GANGA_LIKE_DIR"] = root  # nothing of this run in the user's own root
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="glfr-", dir="/tmp")
    from ganga_like.config import Config
    from ganga_like.engine.core import Engine, set_default_session

    engine = Engine(Config.from_env(root=root))
    set_default_session(engine)  # jobs made here belong to this in-process engine
    try:
        big = _job("big", "sleep 3", 10)
        engine.submit(big)
        time.sleep(0.5)
        small = _job("small", "echo hi", 1)
        submitted = time.time()
        engine.submit(small)
        engine.wait([small], timeout=60)
        waited = _started(small)[0] - submitted
        print(f"fair share: 'small' (1 echo) submitted behind 'big' (10 x sleep 3, 2 slots) "
              f"started after {waited:.1f} s (first in, first out: about 15 s)")
        engine.kill(big)

        holder = _job("big2", "sleep 2", 4)
        engine.submit(holder)
        time.sleep(0.3)
        low, high = _job("low", "sleep 1", 3), _job("high", "sleep 1", 3, priority=10)
        engine.submit(low)
        engine.submit(high)
        engine.wait([holder, low, high], timeout=60)
        order = sorted([(t, "high") for t in _started(high)] + [(t, "low") for t in _started(low)])
        print("priority: start order of the waiting subjobs:", " ".join(name for _, name in order))
    finally:
        engine.close()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
