"""`submit()` of one master of N subjobs through the service, as users submit (issue 22,
point 3: "`submit()` of 100,000 returns in under 5 s"). Run from the repository root::

    .venv/bin/python -m bench.service_submit --sizes 10000,100000 --reps 3

Each repetition has a fresh root. A first script (one job of `/bin/true`) starts the
service and its Ray, so the figure is the service's own work, not its start; then
``ganga-like run bench/ours_scripts/submit_true.py N`` submits one master of N subjobs
of `/bin/true` and reports when ``j.submit()`` returned (``submit_s``) and the client's
CPU for it. ``service_cpu_s`` is the service process's CPU (user + system, from
``/proc``) over that whole script: the split, the records, the first batches sent and
the kill that follows. The master is killed, the service stopped, and what is left is
checked (``ours._stop_service``). Prints the medians; writes
``bench/results/service_submit.json``. Ganga has no service: its ``submit()`` of the
same job is row (a)'s (Ganga cannot run 100,000 in one session in useful time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

from . import ours

SCRIPT = os.path.join(ours._SCRIPTS, "submit_true.py")
WARM = os.path.join(ours._SCRIPTS, "k_script_true.py")


def _service_cpu(env: dict[str, str]) -> float:
    tree = ours._service_tree(ours._service_paths(env))
    if not tree:
        return float("nan")
    times = tree[0].cpu_times()
    return float(times.user + times.system)


def one(n: int) -> dict:
    tmp_root = tempfile.mkdtemp(prefix="bench-ss-")
    env = ours._service_env(tmp_root)
    result: dict = {"n": n}
    try:
        warm = ours._timed(ours._ganga_like("run", WARM, "1"), env, tmp_root, timeout=300)
        if warm["returncode"] != 0:
            result["error"] = f"the first script failed: rc={warm['returncode']}"
            return result
        before = _service_cpu(env)
        run = ours._timed(ours._ganga_like("run", SCRIPT, str(n)), env, tmp_root, timeout=900)
        result["service_cpu_s"] = _service_cpu(env) - before
        result.update({k: run[k] for k in ("submit_s", "client_cpu_s", "status_at_return")
                       if k in run})
        result["script_wall_s"] = run["wall_s"]
        if run["returncode"] != 0:
            result["error"] = f"script rc={run['returncode']}: {run.get('stdout_tail', '')}"
    finally:
        ours._stop_service(env, tmp_root, result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = {n: [one(n) for _ in range(args.reps)] for n in sizes}
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "service_submit.json"), "w") as out:
        json.dump(runs, out, indent=1)
    print("| N | submit() returned (median, all) | service CPU (median) | client CPU (median) |")
    print("| --- | --- | --- | --- |")
    for n, results in runs.items():
        good = [r for r in results if "submit_s" in r]
        if not good:
            print(f"| {n:,} | failed: {results[0].get('error')} | | |")
            continue
        walls = [r["submit_s"] for r in good]
        print(f"| {n:,} | {statistics.median(walls):.2f} s ({', '.join(f'{w:.2f}' for w in walls)}) "
              f"| {statistics.median(r['service_cpu_s'] for r in good):.2f} s "
              f"| {statistics.median(r['client_cpu_s'] for r in good):.2f} s |")


if __name__ == "__main__":
    main()
