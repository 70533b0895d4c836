"""Where the CPU of a burst through one service goes, process by process, beside xargs.

Run from the repository root with the project's venv::

    .venv/bin/python -m bench.process_cpu --n 10000 --rounds 2

One fresh root and its service (started by a first script of one job), then ``--rounds``
bursts of ``ganga-like run bench/ours_scripts/life_true.py N``, as ``back_to_back`` runs
them. Around each burst the CPU time of every process on the machine is read (psutil),
and the differences are summed by kind: the service, the Local actor (its own CPU, and
its reaped children's: the wrappers and their payloads), the client (its children's CPU,
as this process reaps it), Ray's processes by name. Then ``seq N | xargs -P<cpus> -n1
/bin/true`` in the same minute, and its children's CPU. Prints one JSON line per burst;
writes ``bench/results/<out>.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time

import psutil

from . import ours
from .back_to_back import SCRIPT, WARM, xargs

HERE = os.path.dirname(os.path.abspath(__file__))
SHOWN = 0.05  # CPU seconds below which a kind is left out of a burst's row


def _cpu_by_process() -> dict[tuple[int, float], tuple[str, float, float]]:
    """(pid, start) -> (kind, own CPU, reaped children's CPU) for every process now."""
    found = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            times = proc.cpu_times()
            kind = _kind(proc.info["name"] or "", " ".join(proc.info["cmdline"] or ()))
            found[(proc.pid, proc.create_time())] = (kind, times.user + times.system,
                                                     times.children_user + times.children_system)
        except psutil.Error:
            continue
    return found


def _kind(name: str, command: str) -> str:
    if "ganga_like.service.main" in command:
        return "service"
    if "LocalActor" in name:
        return "local actor"
    if name.startswith("ray::") or name in ("raylet", "gcs_server"):
        return name
    return "other"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def burst(n: int, env: dict[str, str], root: str) -> dict:
    """One burst: its wall time, xargs' right after, and the CPU by kind."""
    before, client_before = _cpu_by_process(), _children_cpu()
    run = ours._timed(ours._ganga_like("run", SCRIPT, str(n)), env, root, timeout=1800)
    after, client = _cpu_by_process(), _children_cpu() - client_before
    cpu: collections.Counter[str] = collections.Counter()
    for key, (kind, own, children) in after.items():
        old = before.get(key)
        cpu[kind] += own - (old[1] if old else 0.0)
        if kind == "local actor":
            cpu["wrappers and payloads"] += children - (old[2] if old else 0.0)
    cpu["client"] = client
    xargs_children = _children_cpu()
    xargs_s = xargs(n)
    return {"n": n, "all_final_s": run.get("all_final_s"), "status": run.get("status"),
            "xargs_s": xargs_s, "ratio": (run.get("all_final_s") or 0.0) / xargs_s,
            "xargs_children_cpu_s": _children_cpu() - xargs_children,
            "cpu_s": {kind: round(seconds, 2) for kind, seconds in cpu.most_common()
                      if seconds >= SHOWN and kind != "other"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="process_cpu")
    args = parser.parse_args(argv)
    os.environ[ours.PRODUCT_TREE_VAR] = os.path.dirname(HERE)
    root = tempfile.mkdtemp(prefix="pcpu-")
    env = ours._service_env(root)
    rows = []
    try:
        warm = ours._timed(ours._ganga_like("run", WARM, "1"), env, root, timeout=300)
        if warm["returncode"] != 0:
            raise SystemExit(f"the first script failed: rc={warm['returncode']}")
        for _ in range(args.rounds):
            rows.append(burst(args.n, env, root))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        subprocess.run(ours._ganga_like("service", "stop"), env=env, cwd=root,
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
    with open(os.path.join(HERE, "results", f"{args.out}.json"), "w") as out:
        json.dump({"when": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
