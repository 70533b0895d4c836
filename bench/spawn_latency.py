"""How long the Local actor's ``os.posix_spawn`` of its wrapper takes (issue 22, point 3).

Run from the repository root with the project's venv::

    .venv/bin/python -m bench.spawn_latency --n 5000

CPython holds the GIL through ``os.posix_spawn``, and the call returns once the child
has exec'd the wrapper: the actor's watch thread, which also handles every run's end,
waits that long per subjob. Two figures, each in this process:

* ``alone``: the wrapper spawned (with ``/bin/true`` as its payload) and waited for,
  ``--n`` times in a row, as the actor spawns it (``setsid``, stdio on /dev/null);
* ``in the actor``: the call timed inside a ``LocalActor`` running ``--n`` subjobs of
  ``/bin/true`` on as many slots as CPUs (``bench.local_actor_cpu``'s run), where the
  child waits for a CPU while the payloads use them.

Prints the median, mean and 90th percentile in microseconds of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from bench.local_actor_cpu import measure_ours
from ganga_like.backends.runtime.native import native_wrapper


def _summary(seconds: list[float]) -> str:
    micro = sorted(s * 1e6 for s in seconds)
    return (f"median {statistics.median(micro):.0f} us, mean {statistics.fmean(micro):.0f} us, "
            f"90th percentile {micro[int(len(micro) * 0.9)]:.0f} us ({len(micro)} calls)")


def spawn_alone(n: int) -> list[float]:
    wrapper = native_wrapper()
    assert wrapper, "no C compiler: the native wrapper cannot be built"
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
    times = []
    with tempfile.TemporaryDirectory(prefix="spawn-") as workdir:
        os.mkdir(os.path.join(workdir, "output"))
        argv = [wrapper, workdir, "/bin/true"]
        env = dict(os.environ)
        for _ in range(n):
            start = time.perf_counter()
            pid = os.posix_spawn(wrapper, argv, env, setsid=True, file_actions=actions)
            times.append(time.perf_counter() - start)
            os.waitpid(pid, 0)
    os.close(devnull)
    return times


def spawn_in_actor(n: int) -> list[float]:
    times: list[float] = []
    spawn: Callable[..., int] = os.posix_spawn

    def timed(*args: object, **kwargs: object) -> int:
        start = time.perf_counter()
        try:
            return spawn(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - start)

    os.posix_spawn = timed
    try:
        measure_ours(n)
    finally:
        os.posix_spawn = spawn
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spawn_latency")
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args(argv)
    print(f"alone:        {_summary(spawn_alone(args.n))}")
    print(f"in the actor: {_summary(spawn_in_actor(args.n))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
