"""What the standalone CPU benchmarks share: each figure taken in a fresh process, and
the results written beside the others (``bench/submit_cpu.py``, ``bench/monitor_cpu.py``)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def fresh_runs(module: str, tag: str, arguments: list[str], reps: int) -> list[dict]:
    """Run ``python -m bench.<module> ARGUMENTS`` ``reps`` times, each a fresh process from
    the repository's root; each prints one line ``<tag> {json}``: those objects."""
    runs = []
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-m", f"bench.{module}", *arguments],
                             capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(HERE)).stdout
        line = next(x for x in out.splitlines() if x.startswith(tag + " "))
        runs.append(json.loads(line[len(tag) + 1:]))
    return runs


def write_results(name: str, rows: list[dict]) -> None:
    """Keep the raw figures in ``bench/results/<name>.json``."""
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"{name}.json"), "w") as out_file:
        json.dump(rows, out_file, indent=1)


def median_and_each(values: list[float]) -> str:
    """``0.42 s (0.40, 0.42, 0.47)``: the median and every figure, in seconds."""
    return f"{statistics.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})"
