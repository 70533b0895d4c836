"""One Slurm job array for a batch of subjobs: how specs are grouped, the batch script,
the sbatch options, and the job name that finds the tasks again.

Pure but for :func:`write`: no Slurm, no Ray.

* **Grouping**: the subjobs of one master with the same requests go as one array whose
  task ids are the subjob ids (``--array=0-999%N``; a resubmitted subjob 12 is
  ``--array=12``), so Slurm writes each task's own output into the subjob's directory
  (``<job workspace>/%a/slurm.out``). Subjobs whose requests differ go as separate
  arrays; a job without subjobs is an array of one task (index 0).
* **The script** maps ``SLURM_ARRAY_TASK_ID`` to the subjob (its directory, program and
  arguments, its ``application.env`` and marker) and execs the wrapper, which writes
  the status file as on every backend. sbatch passes on the environment it is run with
  (the submitter's, as Local's payloads get it); CUDA_VISIBLE_DEVICES is Slurm's to set
  (``--gres=gpu:N``), empty for a subjob that asked for no GPU.
* **The job name** is ``<marker prefix>.*`` (``<repository id>:<job id>.*``), or the
  marker itself for a one-task array: :func:`marker_of` turns a task back into its
  subjob's marker, so ``find()`` sees this repository's work in Slurm whatever the
  database says.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
import time
from collections.abc import Mapping, Sequence

from ..base import SubjobSpec
from ..resources import CUDA_VARIABLE
from ..runtime.procs import MARKER_VAR

OPTION_KEYS = ("partition", "account", "qos", "time", "max_running", "extra")
ARRAY_MARK = ".*"  # a job name ending so names an array indexed by subjob id
# Variables of the submitting side that would change what sbatch or the task does.
FOREIGN_PREFIXES = ("SLURM_", "SBATCH_", "RAY_", "_RAY")


@dataclasses.dataclass(frozen=True)
class Array:
    """Specs that go to Slurm as one array; ``indices[i]`` is ``specs[i]``'s task id."""

    specs: tuple[SubjobSpec, ...]
    indices: tuple[int, ...]
    folder: str  # where the script goes; Slurm's own output pattern is under it
    name: str  # the Slurm job name (see marker_of)

    @property
    def by_subjob(self) -> bool:
        return self.name.endswith(ARRAY_MARK)

    def output(self) -> str:
        return os.path.join(self.folder, "%a", "slurm.out") if self.by_subjob else \
            os.path.join(self.folder, "slurm.out")


def plan(specs: Sequence[SubjobSpec]) -> list[Array]:
    """The arrays a batch of specs goes as: one per (master, requests), in spec order."""
    groups: dict[tuple[str, int, tuple[object, ...], str], list[SubjobSpec]] = {}
    alone: list[Array] = []
    for spec in specs:
        parent, leaf = os.path.split(spec.workdir.rstrip("/"))
        if spec.subjob_id is None or leaf != str(spec.subjob_id):
            alone.append(Array((spec,), (0,), spec.workdir, spec.marker))
            continue
        key = (parent, spec.job_id, _requests(spec), _marker_prefix(spec))
        groups.setdefault(key, []).append(spec)
    arrays = [Array(tuple(group), tuple(int(s.subjob_id or 0) for s in group), key[0],
                    key[3] + ARRAY_MARK)
              for key, group in groups.items()]
    return arrays + alone


def _requests(spec: SubjobSpec) -> tuple[object, ...]:
    """What must be equal for subjobs to share an array: their sbatch options and request."""
    return (spec.request, *((key, repr(spec.options.get(key))) for key in OPTION_KEYS))


def _marker_prefix(spec: SubjobSpec) -> str:
    """``<repository id>:<job id>`` of a subjob's marker ``<repository id>:<job id>.<n>``."""
    return spec.marker[: len(spec.marker) - len(str(spec.subjob_id)) - 1]


def marker_of(name: str, index: str) -> str:
    """The marker of task ``index`` of the array named ``name``."""
    return name[: -len(ARRAY_MARK)] + "." + index if name.endswith(ARRAY_MARK) else name


def array_ranges(indices: Sequence[int]) -> str:
    """``0-3,7,9-10`` for [0, 1, 2, 3, 7, 9, 10]: sbatch's --array list, short."""
    ordered = sorted(set(indices))
    spans: list[tuple[int, int]] = []
    for index in ordered:
        if spans and index == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], index)
        else:
            spans.append((index, index))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def sbatch_options(array: Array, default_limit: int | None) -> list[str]:
    """The options of one array's sbatch (besides --parsable and the script)."""
    options, request = dict(array.specs[0].options), array.specs[0].request
    limit = options.get("max_running") or default_limit
    wanted = [f"--array={array_ranges(array.indices)}" + (f"%{limit}" if limit else ""),
              f"--job-name={array.name}", f"--output={array.output()}", "--open-mode=append",
              f"--chdir={array.folder}", f"--cpus-per-task={math.ceil(request.cpus)}"]
    for key, flag in (("partition", "--partition"), ("account", "--account"), ("qos", "--qos"),
                      ("time", "--time")):
        if options.get(key):
            wanted.append(f"{flag}={options[key]}")
    if request.memory_mb is not None:
        wanted.append(f"--mem={math.ceil(request.memory_mb)}M")
    gres = ([f"gpu:{request.gpus}"] if request.gpus else []) + [
        f"{name}:{math.ceil(amount)}" for name, amount in request.resources if amount]
    if gres:
        wanted.append(f"--gres={','.join(gres)}")
    extra = options.get("extra") or ()
    return wanted + [str(item) for item in extra] if isinstance(extra, (list, tuple)) else wanted


def submit_environment(spec: SubjobSpec, own: Mapping[str, str]) -> dict[str, str]:
    """What sbatch runs with, and so what every task starts with: the submitter's
    environment (or the backend's own), without Slurm's, sbatch's and Ray's variables."""
    source = own if spec.base_env is None else spec.base_env
    return {k: v for k, v in source.items() if not k.startswith(FOREIGN_PREFIXES) and k != CUDA_VARIABLE}


def text(array: Array, wrapper: Sequence[str]) -> str:
    """The batch script: the task's subjob, then the wrapper in its place."""
    lines = ["#!/bin/bash",
             "# Written by ganga_like's Slurm backend: each task of this array is one subjob.",
             'case "${SLURM_ARRAY_TASK_ID:-0}" in']
    for spec, index in zip(array.specs, array.indices, strict=True):
        # The GPUs are Slurm's to give (--gres sets CUDA_VISIBLE_DEVICES): none asked, none seen.
        env = {**{k: v for k, v in spec.env.items() if k != CUDA_VARIABLE}, MARKER_VAR: spec.marker}
        if not spec.request.gpus:
            env[CUDA_VARIABLE] = ""
        exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
        command = " ".join(shlex.quote(word) for word in (spec.exe, *spec.args))
        lines.append(f"{index}) workdir={shlex.quote(spec.workdir)}; export {exports}; set -- {command} ;;")
    lines += ['*) echo "ganga_like: no subjob is task ${SLURM_ARRAY_TASK_ID} of this array" >&2; exit 2 ;;',
              "esac",
              "exec " + " ".join(shlex.quote(word) for word in wrapper) + ' "$workdir" "$@"', ""]
    return "\n".join(lines)


def write(array: Array, wrapper: Sequence[str]) -> str:
    """Write the array's batch script into its folder; its path."""
    path = os.path.join(array.folder, f"slurm-{array.indices[0]}-{time.time_ns()}.sh")
    with open(path, "w") as handle:
        handle.write(text(array, wrapper))
    os.chmod(path, 0o700)
    return path
