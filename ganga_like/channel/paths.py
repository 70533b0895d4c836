"""The service's files in a repository root, and the rule that keeps them private.

The root is 0700 and every file the service creates is 0600 (its umask is 077):
job definitions carry environments, outputs are the user's data.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

ROOT_MODE = 0o700


@dataclasses.dataclass(frozen=True)
class ServicePaths:
    root: str

    @property
    def zeo_socket(self) -> str:
        return os.path.join(self.root, "zeo.sock")

    @property
    def control_socket(self) -> str:
        return os.path.join(self.root, "service.sock")

    @property
    def lock(self) -> str:
        """Held (flock) by the running service for its whole life; holds its pid."""
        return os.path.join(self.root, "service.lock")

    @property
    def start_lock(self) -> str:
        """Held by a client while it starts a service, so two clients start one."""
        return os.path.join(self.root, "service.starting")

    @property
    def state(self) -> str:
        """What a dead service left to clean up: its Ray directory, its pid."""
        return os.path.join(self.root, "service.json")

    @property
    def ray_token(self) -> str:
        """The token of the service's own Ray head (Ray's token authentication)."""
        return os.path.join(self.root, "ray-auth-token")

    @property
    def log(self) -> str:
        return os.path.join(self.root, "service.log")

    @property
    def server_cert(self) -> str:
        return os.path.join(self.root, "service-tls.pem")

    @property
    def client_secret(self) -> str:
        """The file a remote client must present (TLS client key and certificates)."""
        return os.path.join(self.root, "service-secret.pem")

    def make_root(self) -> None:
        """Create the root if needed and make it private (0700), unless it was opened
        to an output group (then it is left as the service made it)."""
        os.makedirs(self.root, mode=ROOT_MODE, exist_ok=True)
        if os.stat(self.root).st_mode & 0o007:
            os.chmod(self.root, ROOT_MODE)

    def read_state(self) -> dict[str, Any]:
        try:
            with open(self.state) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle)
        os.replace(tmp, self.state)

    def holder_pid(self) -> int | None:
        """The pid written in the lock file (it may be stale: check the lock itself)."""
        try:
            with open(self.lock) as handle:
                return int(handle.read().strip() or 0) or None
        except (OSError, ValueError):
            return None
