"""One Slurm job array for a batch of subjobs: how specs are grouped, the batch script,
the sbatch options, and the job name that finds the tasks again.

Pure but for :func:`write`: no Slurm, no Ray.

* **Grouping**: the subjobs of one master with the same requests go as one array whose
  task ids are the subjob ids (``--array=0-999%N``; a resubmitted subjob 12 is
  ``--array=12``), so Slurm writes each task's own output into the subjob's directory
  (``<job workspace>/%a/slurm.out``). Subjobs whose requests differ go as separate
  arrays; a job without subjobs is an array of one task (index 0).
* **Slurm's limits** (:class:`Limits`, from ``scontrol show config``): a task id stays
  below ``MaxArraySize``, and an array holds at most ``max_array_tasks`` (else
  ``MaxArraySize``) and ``MaxJobCount`` tasks. A master past them goes as several arrays:
  subjob ``s`` is task ``s % MaxArraySize`` of the array of its block (subjobs
  ``b*M .. b*M+M-1``, *offset* ``b*M``), whatever else is sent with it, so a resubmitted
  subjob is always the same task id. An array with an offset names it (``<prefix>.*+1001``)
  and its tasks write through ``<job workspace>/slurm-tasks+1001/<task id>``, links to
  the subjobs' directories (Slurm's ``%a`` cannot add).
* **The script** maps ``SLURM_ARRAY_TASK_ID`` to the subjob (its directory, program and
  arguments, its ``application.env`` and marker) and execs the wrapper, which writes
  the status file as on every backend. sbatch passes on the environment it is run with
  (the submitter's, as Local's payloads get it); CUDA_VISIBLE_DEVICES is Slurm's to set
  (``--gres=gpu:N``), empty for a subjob that asked for no GPU.
* **The job name** is ``<marker prefix>.*`` (``<repository id>:<job id>.*``, with
  ``+<offset>`` past the first block), or the marker itself for a one-task array of a
  job without subjobs: :func:`marker_of` turns a task back into its subjob's marker, so
  ``find()`` sees this repository's work in Slurm whatever the database says.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import time
from collections.abc import Mapping, Sequence

from ..base import SubjobSpec
from ..resources import CUDA_VARIABLE
from ..runtime.procs import MARKER_VAR

OPTION_KEYS = ("partition", "account", "qos", "time", "max_running", "extra")
ARRAY_MARK = ".*"  # a job name ending so (or with "+<offset>") names an array indexed by subjob id
_ARRAY_NAME = re.compile(r"(?P<prefix>.*)\.\*(?:\+(?P<offset>\d+))?\Z")
TASK_LINKS = "slurm-tasks+"  # + offset: the folder of links task id -> subjob directory
# Variables of the submitting side that would change what sbatch or the task does.
FOREIGN_PREFIXES = ("SLURM_", "SBATCH_", "RAY_", "_RAY")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What Slurm lets one array be (``scontrol show config``; None: Slurm did not say)."""

    array_size: int | None = None  # MaxArraySize: every task id stays below it
    array_tasks: int | None = None  # SchedulerParameters' max_array_tasks: tasks per array
    job_count: int | None = None  # MaxJobCount: each task of an array counts as one job

    def tasks_per_array(self) -> int | None:
        known = [n for n in (self.array_size, self.array_tasks, self.job_count) if n]
        return min(known) if known else None


@dataclasses.dataclass(frozen=True)
class Array:
    """Specs that go to Slurm as one array; ``indices[i]`` is ``specs[i]``'s task id
    (its subjob id less ``offset``)."""

    specs: tuple[SubjobSpec, ...]
    indices: tuple[int, ...]
    folder: str  # where the script goes; Slurm's own output pattern is under it
    name: str  # the Slurm job name (see marker_of)
    offset: int = 0

    @property
    def by_subjob(self) -> bool:
        return _ARRAY_NAME.match(self.name) is not None

    def output(self) -> str:
        if not self.by_subjob:
            return os.path.join(self.folder, "slurm.out")
        return os.path.join(self.folder, *([f"{TASK_LINKS}{self.offset}"] if self.offset else []),
                            "%a", "slurm.out")


def plan(specs: Sequence[SubjobSpec], limits: Limits | None = None) -> list[Array]:
    """The arrays a batch of specs goes as: per (master, requests), in spec order, each
    within Slurm's ``limits`` (see the module doc)."""
    groups: dict[tuple[str, int, tuple[object, ...], str], list[SubjobSpec]] = {}
    alone: list[Array] = []
    for spec in specs:
        parent, leaf = os.path.split(spec.workdir.rstrip("/"))
        if spec.subjob_id is None or leaf != str(spec.subjob_id):
            alone.append(Array((spec,), (0,), spec.workdir, spec.marker))
            continue
        key = (parent, spec.job_id, _requests(spec), _marker_prefix(spec))
        groups.setdefault(key, []).append(spec)
    limits = limits or Limits()
    arrays = [array for (folder, _job, _asks, prefix), group in groups.items()
              for array in _split(group, folder, prefix, limits)]
    return arrays + alone


def _split(group: list[SubjobSpec], folder: str, prefix: str, limits: Limits) -> list[Array]:
    """One master's subjobs with equal requests as arrays: by block of ``MaxArraySize``
    subjob ids (the block's first id is the array's offset), then in runs of at most
    the tasks one array may hold."""
    block = limits.array_size or 0
    by_offset: dict[int, list[SubjobSpec]] = {}
    for spec in group:
        sub = int(spec.subjob_id or 0)
        by_offset.setdefault(sub - sub % block if block else 0, []).append(spec)
    size = limits.tasks_per_array() or len(group)
    arrays = []
    for offset, specs in by_offset.items():
        name = prefix + ARRAY_MARK + (f"+{offset}" if offset else "")
        for start in range(0, len(specs), size):
            chunk = tuple(specs[start:start + size])
            arrays.append(Array(chunk, tuple(int(s.subjob_id or 0) - offset for s in chunk), folder,
                                name, offset))
    return arrays


def _requests(spec: SubjobSpec) -> tuple[object, ...]:
    """What must be equal for subjobs to share an array: their sbatch options and request."""
    return (spec.request, *((key, repr(spec.options.get(key))) for key in OPTION_KEYS))


def _marker_prefix(spec: SubjobSpec) -> str:
    """``<repository id>:<job id>`` of a subjob's marker ``<repository id>:<job id>.<n>``."""
    return spec.marker[: len(spec.marker) - len(str(spec.subjob_id)) - 1]


def marker_of(name: str, index: str) -> str:
    """The marker of task ``index`` of the array named ``name`` (its subjob id is the
    task id plus the offset the name carries)."""
    found = _ARRAY_NAME.match(name)
    if found is None or not index.isdigit():
        return name
    return f"{found['prefix']}.{int(index) + int(found['offset'] or 0)}"


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


def sbatch_options(array: Array, default_limit: int | None, after: str = "") -> list[str]:
    """The options of one array's sbatch (besides --parsable and the script). ``after``:
    the job id of the master's array this one must wait for (``--dependency=afterany``):
    Slurm's ``%N`` limits one array, so where the master's tasks are limited and its
    arrays together could pass N, they run one after the other (the actor decides)."""
    options, request = dict(array.specs[0].options), array.specs[0].request
    limit = options.get("max_running") or default_limit
    wanted = [f"--array={array_ranges(array.indices)}" + (f"%{limit}" if limit else ""),
              f"--job-name={array.name}", f"--output={array.output()}", "--open-mode=append",
              f"--chdir={array.folder}", f"--cpus-per-task={math.ceil(request.cpus)}"]
    if limit and after:
        wanted.append(f"--dependency=afterany:{after}")
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
    """Write the array's batch script into its folder (and, for an array with an offset,
    the links its output pattern goes through); its path."""
    if array.by_subjob and array.offset:
        links = os.path.join(array.folder, f"{TASK_LINKS}{array.offset}")
        os.makedirs(links, exist_ok=True)
        for index in array.indices:
            link = os.path.join(links, str(index))
            if not os.path.islink(link):
                os.symlink(os.path.join("..", str(index + array.offset)), link)
    path = os.path.join(array.folder, f"slurm-{array.offset + array.indices[0]}-{time.time_ns()}.sh")
    with open(path, "w") as handle:
        handle.write(text(array, wrapper))
    os.chmod(path, 0o700)
    return path
