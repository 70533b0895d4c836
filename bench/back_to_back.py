"""Bursts of N `/bin/true` through one service, back to back, each beside `xargs` in the
same minute (issue 22, point 3: "10,000 within twice the time of `xargs -P` with as
many slots"). Run from the repository root::

    .venv/bin/python -m bench.back_to_back --n 10000 --rounds 3
    .venv/bin/python -m bench.back_to_back --trees .,/path/to/other/checkout --sets 2
    .venv/bin/python -m bench.back_to_back --where /dev/shm        # on tmpfs

A user submits one burst after another to the same service, so each burst runs where
the previous one's directories were just tidied: on ext4 without a journal an inode
allocated in the minute after many were freed costs several times more
(docs/performance.md, "The filesystem"). For each tree (a checkout whose ganga_like is
measured, ``BENCH_PRODUCT_TREE``), one fresh root under ``--where`` (default: the
temporary directory) and its service, started by a first script of one job; then
``--rounds`` times: ``ganga-like run bench/ours_scripts/life_true.py N`` (submit, poll
until final: ``all_final_s`` from before the submit) and at once ``seq N | xargs
-P<slots> -n1 /bin/true`` with as many slots as Local's default (the CPU count). The
trees take turns ``--sets`` times. Prints one row per burst; writes
``bench/results/<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time

from . import ours

SCRIPT = os.path.join(ours._SCRIPTS, "life_true.py")
WARM = os.path.join(ours._SCRIPTS, "k_script_true.py")


def xargs(n: int) -> float:
    slots = os.cpu_count() or 1
    start = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P{slots} -n1 /bin/true", shell=True, check=True)
    return time.perf_counter() - start


def bursts(tree: str, n: int, rounds: int, where: str) -> list[dict]:
    """``rounds`` bursts through one service of ``tree``, each followed by xargs."""
    os.environ[ours.PRODUCT_TREE_VAR] = os.path.abspath(tree)
    tmp_root = tempfile.mkdtemp(prefix="b2b-", dir=where)
    env = ours._service_env(tmp_root)
    rows: list[dict] = []
    end: dict = {}
    try:
        warm = ours._timed(ours._ganga_like("run", WARM, "1"), env, tmp_root, timeout=300)
        if warm["returncode"] != 0:
            return [{"tree": tree, "error": f"the first script failed: rc={warm['returncode']}"}]
        for burst in range(1, rounds + 1):
            run = ours._timed(ours._ganga_like("run", SCRIPT, str(n)), env, tmp_root, timeout=1800)
            row = {"tree": tree, "burst": burst, "n": n, "where": where,
                   **{k: run[k] for k in ("submit_s", "all_final_s", "status") if k in run}}
            if run["returncode"] != 0 or run.get("status") != "completed":
                row["error"] = f"script rc={run['returncode']}, status {run.get('status')}"
            row["xargs_s"] = xargs(n)
            if "all_final_s" in row:
                row["ratio"] = row["all_final_s"] / row["xargs_s"]
            rows.append(row)
    finally:
        ours._stop_service(env, tmp_root, end)
        os.environ.pop(ours.PRODUCT_TREE_VAR, None)
    if end.get("leftover_processes_at_end"):
        rows.append({"tree": tree, "error": f"left behind: {end.get('leftover_examples')}"})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3, help="bursts per service")
    parser.add_argument("--trees", default=".", help="checkouts to measure, comma-separated")
    parser.add_argument("--sets", type=int, default=1, help="times the trees take turns")
    parser.add_argument("--where", default=tempfile.gettempdir(), help="the roots' file system")
    parser.add_argument("--out", default="back_to_back")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    print("| tree | burst | N | all final | xargs, same minute | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for _ in range(args.sets):
        for tree in args.trees.split(","):
            for row in bursts(tree, args.n, args.rounds, args.where):
                rows.append(row)
                if "error" in row:
                    print(f"| {tree} | {row.get('burst', '')} | failed: {row['error']} | | | |")
                    continue
                print(f"| {tree} | {row['burst']} | {row['n']:,} | {row['all_final_s']:.2f} s "
                      f"| {row['xargs_s']:.2f} s | {row['ratio']:.2f} |", flush=True)
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", f"{args.out}.json"), "w") as out:
        json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
