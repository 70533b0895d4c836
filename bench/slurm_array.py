"""One job of N subjobs of ``/bin/true`` as Slurm arrays, beside the same job on Local.

    .venv/bin/python -m bench.slurm_array [--n 200] [--conf /path/slurm.conf] [--max-array-size M]

Without ``--conf`` it starts the tests' one-node Slurm (``tests/slurm_cluster.py``: 8
CPUs declared) for the run and stops it after, with Slurm's default MaxArraySize (1001:
up to 1,001 subjobs go as one array) or ``--max-array-size M`` (a master of N > M
subjobs then goes as N/M arrays, still one squeue per round). Each backend first runs a
one-subjob job (its actor's start-up, kept out of the figures, as Ray's own start is),
then the N-subjob job: ``submit_s`` (``submit()`` returning: for Slurm, one sbatch),
``end_to_end_s`` (from before ``submit()`` to every subjob ``completed``), and for Slurm
the commands the actor ran while the job ran, per monitoring round. Prints a Markdown
table. Everything lives in a temporary directory, removed after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ganga_like.backends.config import BackendConfig
    from ganga_like.engine.core import Engine
    from ganga_like.model.job import Job


def _job(backend: BackendConfig, n: int) -> Job:
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.splitters import ArgSplitter

    return Job(application=Executable(exe="/bin/true"), backend=backend,
               splitter=ArgSplitter(args=[[]] * n))


def _ping(engine: Engine, backend: BackendConfig) -> dict:
    from ganga_like.ray_runtime import import_ray

    actor = engine.context.backends.actor(backend)
    return import_ray().get(actor.ping.remote())


def measure(engine: Engine, backend: BackendConfig, n: int) -> dict[str, float]:
    warm = _job(backend, 1)
    engine.submit(warm)
    engine.wait([warm], timeout=120)
    before = _ping(engine, backend)
    job = _job(backend, n)
    started = time.monotonic()
    engine.submit(job)
    submitted = time.monotonic()
    statuses = engine.wait([job], timeout=900)
    done = time.monotonic()
    after = _ping(engine, backend)
    assert str(statuses[0]) == "completed", job.subjob_counts
    result = {"submit_s": submitted - started, "end_to_end_s": done - started}
    if "rounds" in after:
        result["arrays"] = len({str(sj.backend.id).split("_")[0] for sj in job.subjobs})
        rounds = after["rounds"] - before["rounds"]
        result["rounds"] = rounds
        result["commands"] = after["commands"] - before["commands"]
        watching = after["monitor_commands"] - before["monitor_commands"]
        result["commands_per_round"] = watching / rounds if rounds else 0.0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--conf", default="", help="slurm.conf of a Slurm to use (default: start one)")
    parser.add_argument("--max-array-size", type=int, default=None,
                        help="MaxArraySize of the Slurm it starts (default: Slurm's, 1001)")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = tempfile.mkdtemp(prefix="gl-bench-slurm-")
    os.environ["GANGA_LIKE_DIR"] = os.path.join(root, "gl")
    cluster = None
    if not args.conf:
        from tests import slurm_cluster

        cluster = slurm_cluster.start(max_array_size=args.max_array_size)
    conf = args.conf or (cluster.conf if cluster is not None else "")
    from ganga_like.backends.local.config import Local
    from ganga_like.backends.slurm.config import Slurm
    from ganga_like.config import Config
    from ganga_like.engine.core import Engine

    engine = Engine(Config.from_env(root=os.environ["GANGA_LIKE_DIR"]))
    try:
        slurm = measure(engine, Slurm(conf=conf), args.n)
        arrays = int(slurm["arrays"])
        rows = {f"Slurm ({'one array' if arrays == 1 else f'{arrays} arrays'})": slurm,
                "Local": measure(engine, Local(), args.n)}
    finally:
        engine.close()
        if cluster is not None:
            slurm_cluster.stop(cluster)
        shutil.rmtree(root, ignore_errors=True)
    print(f"| {args.n} subjobs of /bin/true | submit() | end to end | Slurm commands per round |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        per_round = (f"{row['commands_per_round']:.2f} in {row['rounds']:.0f} rounds ({row['commands']:.0f} "
                     f"commands in all, sbatch included)") if "rounds" in row else "-"
        print(f"| {name} | {row['submit_s']:.2f} s | {row['end_to_end_s']:.1f} s | {per_round} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
