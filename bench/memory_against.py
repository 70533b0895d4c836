"""(k'') the service's memory, this tree against another checkout of ganga_like, in one run
(issue 22, point 1: "at most half of today's"). Run from the repository root::

    git worktree add /tmp/issue22 75ad06b        # the commit issue 22 was measured at
    .venv/bin/python -m bench.memory_against --other /tmp/issue22 --reps 3

Each repetition measures both, one after the other (this tree first), with
``ours.service_memory``: a cold service started by a client's script of N subjobs of
`/bin/true` on a fresh root, then the PSS summed over the service's process tree (shared
pages split among the processes that map them) once Ray has ended its idle workers.
The other checkout runs with this venv's packages, its own ``ganga_like`` first on the
path (``BENCH_PRODUCT_TREE``). Measure on a quiet machine: another Ray running beside
it maps the same libraries and lowers every PSS. Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from . import ours

MIB = 2**20


def _measure(tree: str | None, n: int) -> dict:
    if tree is None:
        os.environ.pop(ours.PRODUCT_TREE_VAR, None)
    else:
        os.environ[ours.PRODUCT_TREE_VAR] = tree
    try:
        return ours.service_memory(n, tempfile.mkdtemp(prefix="bench-mem-"))
    finally:
        os.environ.pop(ours.PRODUCT_TREE_VAR, None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="another checkout of ganga_like")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=10, help="subjobs of the client's script")
    args = parser.parse_args(argv)
    other = os.path.abspath(args.other)
    if not os.path.isdir(os.path.join(other, "ganga_like")):
        parser.error(f"--other {other} holds no ganga_like/ (give a checkout's top directory)")
    ours_pss, other_pss = [], []
    for rep in range(args.reps):
        for tree, into in ((None, ours_pss), (other, other_pss)):
            result = _measure(tree, args.n)
            if result.get("error"):
                raise SystemExit(f"{tree or 'this tree'}: {result['error']}")
            into.append(result["service_pss_bytes"] / MIB)
            print(f"rep {rep + 1}, {tree or 'this tree'}: {into[-1]:.1f} MiB PSS, "
                  f"{result.get('service_processes')} processes", flush=True)
            print(f"    RSS each: {' '.join(result.get('service_tree', []))}", flush=True)
    mine, theirs = statistics.median(ours_pss), statistics.median(other_pss)
    print(f"| service tree PSS, median of {args.reps} | this tree {mine:.1f} MiB | "
          f"{other} {theirs:.1f} MiB | ratio {mine / theirs:.3f} |")


if __name__ == "__main__":
    main()
