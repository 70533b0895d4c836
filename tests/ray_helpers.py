"""Start and stop the ONE local Ray a test session uses (importable by any conftest).

Facts this follows (see FACTS.md): start Ray once per session (≈4 s); use
``address="local"`` (a stale cluster file makes ``"auto"`` hang); a short fresh
``RAY_TMPDIR``. Everything else is the product's own environment
(``ganga_like.ray_runtime``: Ray imported after its environment is settled, token
authentication on, as a user has it).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

from ganga_like.ray_runtime import RAY_SYSTEM_CONFIG, import_ray

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class RaySession:
    """What :func:`start_test_ray` did, so :func:`stop_test_ray` undoes only that."""

    started: bool
    tmpdir: str | None = None
    saved_env: dict[str, str | None] = dataclasses.field(default_factory=dict)


def start_test_ray(num_cpus: int = 2, num_gpus: int = 2) -> RaySession:
    """Start a local Ray for tests, or reuse the one already initialised in this process.
    Its ``num_gpus`` are Ray's logical GPUs: no GPU is needed to test GPU requests."""
    ray = import_ray()
    if ray.is_initialized():
        return RaySession(started=False)
    tmpdir = tempfile.mkdtemp(prefix="glr-", dir="/tmp")  # short: Ray's socket paths are limited
    wanted = {"RAY_TMPDIR": tmpdir}
    # Workers must import ganga_like: they inherit the environment of the raylet.
    path = os.environ.get("PYTHONPATH", "")
    if REPO_ROOT not in path.split(os.pathsep):
        wanted["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, path) if p)
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    ray.init(
        address="local",
        _system_config=dict(RAY_SYSTEM_CONFIG),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        _temp_dir=tmpdir,
        logging_level="WARNING",
        log_to_driver=False,
    )
    return RaySession(started=True, tmpdir=tmpdir, saved_env=saved)


def stop_test_ray(session: RaySession) -> None:
    """Shut down the Ray this session started (never someone else's) and clean up."""
    if not session.started:
        return
    ray = import_ray()
    ray.shutdown()
    for key, value in session.saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if session.tmpdir:
        shutil.rmtree(session.tmpdir, ignore_errors=True)
