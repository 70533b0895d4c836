"""``Local()``: run subjobs as processes on this machine."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess

from ...errors import ConfigurationError
from ...model.component import Field, FrozenList, check_positive_int
from ..config import BackendConfig
from ..resources import Capacity, Request, ResourceFields, refusal

GPU_IDS_VARIABLE = "GANGA_LIKE_GPU_IDS"  # the configuration's GPU ids: '0,1' ('' for none)
GPU_IDS_FORM = "None (detected), or a list of GPU ids (whole numbers >= 0), e.g. [0, 1]"
_NVIDIA_GPU_LINE = re.compile(r"GPU (\d+):")


def _check_concurrency(value: object) -> int | None:
    return None if value is None else check_positive_int(value)


def _check_gpu_ids(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"got {type(value).__name__}")
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in value):
        raise ValueError("an id that is not a whole number >= 0")
    if len(set(value)) != len(value):
        raise ValueError("an id appears twice")
    return FrozenList(sorted(value))


def configured_gpu_ids(environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[int, ...] | None:
    """The GPU ids the configuration gives (``GANGA_LIKE_GPU_IDS``), None if it gives none."""
    text = environ.get(GPU_IDS_VARIABLE)
    if text is None:
        return None
    try:
        found = _check_gpu_ids([int(part) for part in text.replace(" ", "").split(",") if part])
    except ValueError:
        raise ConfigurationError(f"{GPU_IDS_VARIABLE}={text!r} is not valid: expected GPU ids "
                                 f"separated by commas, e.g. '0,1' ('' for none)") from None
    return tuple(found or ())


@functools.lru_cache(maxsize=1)
def detected_gpu_ids() -> tuple[int, ...]:
    """The GPUs ``nvidia-smi -L`` lists (none where it is missing or fails)."""
    program = shutil.which("nvidia-smi")
    if program is None:
        return ()
    try:
        listing = subprocess.run([program, "-L"], capture_output=True, text=True, timeout=20,
                                 check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(sorted(int(m.group(1)) for m in _NVIDIA_GPU_LINE.finditer(listing)))


class Local(ResourceFields, BackendConfig):
    """Run each subjob as a process on this machine, through a small wrapper.

    Subjobs run at once while their ``cpus`` fit in ``concurrency`` slots (default:
    the number of CPUs), their ``memory`` in the machine's and their ``gpus`` among
    ``gpu_ids``; the rest wait, shared fairly between jobs and by ``j.priority``, with
    a backend detail that says why. Processes run in their own
    session, so they outlive the session that started them; the next session
    adopts them.
    """

    concurrency = Field(None, _check_concurrency, "a positive whole number or None (CPU count)",
                        "CPU slots on this machine: subjobs run at once while their cpus fit")
    gpu_ids = Field(None, _check_gpu_ids, GPU_IDS_FORM,
                    "the GPUs subjobs may be given (None: GANGA_LIKE_GPU_IDS, else nvidia-smi -L)")

    @property
    def batchsize(self) -> int | None:
        """Ganga's name for ``concurrency`` (Ganga's Local runs ``batchsize`` at once)."""
        return self.concurrency

    @batchsize.setter
    def batchsize(self, value: object) -> None:
        self.concurrency = value

    def __init__(self, *positional: object, **values: object) -> None:
        if "batchsize" in values:
            values["concurrency"] = values.pop("batchsize")
        super().__init__(*positional, **values)

    def effective_concurrency(self) -> int:
        return self.concurrency or os.cpu_count() or 1

    def effective_gpu_ids(self) -> tuple[int, ...]:
        """The GPUs this config's subjobs may be given: declared, configured or detected."""
        if self.gpu_ids is not None:
            return tuple(self.gpu_ids)
        configured = configured_gpu_ids()
        return configured if configured is not None else detected_gpu_ids()

    def actor_key(self) -> tuple:
        # The GPU ids choose the actor (one actor hands out each id); a machine without
        # GPUs keeps the name its actor always had.
        gpus = self.effective_gpu_ids()
        return ("Local", self.effective_concurrency(), *((",".join(map(str, gpus)),) if gpus else ()))

    def capacities(self) -> list[Capacity]:
        from ..runtime.procs import machine_memory_mb  # not at import: it imports psutil

        return [Capacity("this machine", self.effective_concurrency(), self.effective_gpu_ids(),
                         machine_memory_mb(), (), "Local's concurrency")]

    def refusal(self, request: Request) -> str:
        return refusal(request, self.capacities()[0])  # one machine: say what it has

    def make_actor(self, name: str) -> object:
        from ...ray_runtime import RAY_NAMESPACE
        from .actor import start_local_actor

        return start_local_actor(name, concurrency=self.effective_concurrency(),
                                 gpu_ids=self.effective_gpu_ids(),
                                 namespace=RAY_NAMESPACE, get_if_exists=True)
