"""The Local actor's CPU per subjob, and its wrapper's, beside xargs (issue 22, point 3:
"10,000 within twice the time of `xargs -P` with as many slots").

Run from the repository root with the project's venv::

    .venv/bin/python -m bench.local_actor_cpu --n 10000 --reps 3
    .venv/bin/python -m bench.local_actor_cpu --n 500 --reps 1      # quick check

Each figure is taken in a fresh process (``--measure``). ``ours``: a ``LocalActor`` (the
plain class, in-process, as the service's Ray actor runs it, without Ray) with
``concurrency`` = the CPU count runs N subjobs of ``/bin/true`` in one master, read back
through ``events()`` as the monitor reads them (30 ms linger), until every one is final.
``actor_cpu_s`` is that process's CPU (the actor's threads and the reading loop);
``children_cpu_s`` is its reaped children's (the wrappers and their ``/bin/true``). Then
``xargs``: ``seq N | xargs -P<cpus> -n1 /bin/true``, its wall time and its children's CPU.
The wrapper's share per subjob is ours' children minus xargs' children, over N. The
order of the two alternates between repetitions. CPU seconds compare on a loaded
machine; wall times do not. Prints medians; writes ``bench/results/local_actor_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LINGER = 0.03  # the monitor's EVENT_LINGER


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_ours(n: int) -> dict[str, float]:
    from ganga_like.backends import base
    from ganga_like.backends.local.actor import LocalActor

    root = tempfile.mkdtemp(prefix="lac-")
    try:
        master = os.path.join(root, "workspace", "1")
        os.makedirs(master)
        env = dict(os.environ)
        specs = [base.SubjobSpec(1, i, f"1.{i}", "/bin/true", (), {}, os.path.join(master, str(i)),
                                 f"bench-lac:1.{i}", base_env=env) for i in range(n)]
        actor = LocalActor(concurrency=os.cpu_count())
        try:
            wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
            actor.submit(specs)
            since, final = 0, 0
            while final < n:
                since, events = actor.events(since, 5.0, LINGER)
                final += sum(e.kind in (base.FINISHED, base.KILLED, base.LOST) for e in events)
            return {"n": n, "wall_s": time.perf_counter() - wall, "actor_cpu_s": time.process_time() - cpu,
                    "children_cpu_s": _children_cpu() - children}
        finally:
            actor.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure_xargs(n: int) -> dict[str, float]:
    wall, children = time.perf_counter(), _children_cpu()
    subprocess.run(f"seq {n} | xargs -P{os.cpu_count()} -n1 /bin/true", shell=True, check=True)
    return {"n": n, "wall_s": time.perf_counter() - wall, "children_cpu_s": _children_cpu() - children}


def _fresh(kind: str, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "bench.local_actor_cpu", "--measure", kind, "--n", str(n)],
                         capture_output=True, text=True, check=True, cwd=os.path.dirname(HERE)).stdout
    line = next(x for x in out.splitlines() if x.startswith("LOCAL_ACTOR_CPU "))
    return json.loads(line[len("LOCAL_ACTOR_CPU "):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--measure", choices=("ours", "xargs"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        figure = (measure_ours if args.measure == "ours" else measure_xargs)(args.n)
        print("LOCAL_ACTOR_CPU " + json.dumps(figure), flush=True)
        return 0
    ours, xargs = [], []
    for rep in range(args.reps):
        for kind in (("ours", "xargs") if rep % 2 == 0 else ("xargs", "ours")):
            (ours if kind == "ours" else xargs).append(_fresh(kind, args.n))
    n = args.n

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    wrapper = median(ours, "children_cpu_s") - median(xargs, "children_cpu_s")
    print(f"| N = {n:,} | ours (median of {args.reps}) | xargs -P{os.cpu_count()} |")
    print("| --- | --- | --- |")
    print(f"| wall | {median(ours, 'wall_s'):.2f} s | {median(xargs, 'wall_s'):.2f} s |")
    print(f"| actor CPU | {median(ours, 'actor_cpu_s'):.2f} s "
          f"({1e6 * median(ours, 'actor_cpu_s') / n:.0f} µs per subjob) | – |")
    print(f"| children CPU | {median(ours, 'children_cpu_s'):.2f} s | "
          f"{median(xargs, 'children_cpu_s'):.2f} s |")
    print(f"| wrapper's share | {wrapper:.2f} s ({1e6 * wrapper / n:.0f} µs per subjob) | – |")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "local_actor_cpu.json"), "w") as out_file:
        json.dump({"ours": ours, "xargs": xargs}, out_file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
