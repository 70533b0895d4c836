"""``ganga-like serve``: share the repository through a ZEO server.

The server runs in this process, where ``ganga_like`` is importable: ZEO
resolves write conflicts (the per-status counts of a master) only for classes
it can import, so a bare ``runzeo`` without the project would turn every
concurrent subjob update into a retry.
"""

from __future__ import annotations

import os

from .config import Config


def serve(host: str, port: int, path: str | None = None) -> int:
    from ZEO.runzeo import ZEOOptions, ZEOServer

    import ganga_like.model.counts  # noqa: F401  (importable here: conflicts resolve)

    path = path or Config.from_env().filestorage_path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    options = ZEOOptions()
    options.realize(["-a", f"{host}:{port}", "-f", path])
    print(f"serving {path} on zeo://{host}:{port} (Ctrl-C to stop)", flush=True)
    ZEOServer(options).main()
    return 0
