"""The native wrapper: compiled once from wrapper.c, cached, with wrapper.sh as fallback.

bash's own start-up costs about 2 ms per subjob, more than the payloads many
users run; the native wrapper keeps the Local backend near the machine's floor
for starting and reaping processes. It is built on first use with the system C
compiler into a per-user cache keyed by the source's hash (so an upgrade
rebuilds it); where no compiler exists, the bash wrapper (same contract) is used.

It is linked statically where the C library allows it: a static binary skips the
dynamic loader, about a quarter of the wrapper's cost per subjob (0.25 ms here).
The wrapper closes every inherited descriptor above 2 itself, so starters may use
``posix_spawn`` (see ``spawns_directly``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "wrapper.c")
SHELL_WRAPPER = os.path.join(HERE, "wrapper.sh")
BUILD_RECIPE = b"cc -O2 [-static]"


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ganga_like")


def native_wrapper(build: bool = True) -> str | None:
    """Path of the compiled wrapper, building it if needed; None if it cannot be built."""
    if os.environ.get("GANGA_LIKE_SHELL_WRAPPER"):
        return None  # forced: e.g. to test the bash wrapper's contract
    with open(SOURCE, "rb") as handle:
        # The build recipe is part of the key: a change of flags rebuilds too.
        digest = hashlib.sha256(handle.read() + BUILD_RECIPE).hexdigest()[:16]
    target = os.path.join(_cache_dir(), f"wrapper-{digest}-{platform.machine()}")
    if os.access(target, os.X_OK):
        return target
    if not build:
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".wrapper-")
    os.close(fd)
    try:
        for flags in (["-O2", "-static"], ["-O2"]):  # static where libc.a exists
            result = subprocess.run([compiler, *flags, "-o", temporary, SOURCE],
                                    capture_output=True, text=True, timeout=120)
            if result.returncode == 0:
                break
        else:
            return None
        os.chmod(temporary, 0o755)
        os.replace(temporary, target)  # atomic: concurrent builders agree on the result
        return target
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def wrapper_command(bash: str | None = None) -> list[str]:
    """The argv prefix that runs the wrapper: ``[native]`` or ``[bash, wrapper.sh]``."""
    native = native_wrapper()
    if native is not None:
        return [native]
    return [bash or shutil.which("bash") or "/bin/bash", SHELL_WRAPPER]
