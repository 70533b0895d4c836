"""Outgrowing one machine: nodes join the service's Ray head and the backends use them.

The service's Ray binds loopback unless it is opened (``GANGA_LIKE_RAY_OPEN=1``,
``ganga-like service start --ray-open``); then other machines join with Ray's own
``ray start --address=<the address service status shows>``. Here the "machine" is
one more Ray node on this one, started after the service, and used by the Hosts and
RayCluster backends without restarting anything. One node shows it: what is under test
is that a node that joins a running service is used, by label and by resource; how the
Hosts backend chooses among several hosts is its own tests' (tests/backends/).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.service.test_service import client, service_status, wait_for
from tests.test_cli import finish_root, gl_env, run_gl

RAY = str(Path(sys.executable).parent / "ray")


def _service_ray_address(root: Path) -> str:
    wait_for(lambda: service_status(root)["ray_address"], timeout=60, what="the service's Ray")
    return str(service_status(root)["ray_address"])


def test_nodes_that_join_the_service_are_used_without_a_restart(tmp_path):
    root = tmp_path / "gl"
    try:
        started = run_gl(root, "service", "start", "--ray-open", check_clean=False)
        assert started.returncode == 0, started.stderr
        address = _service_ray_address(root)
        assert not address.startswith("127."), f"an opened head must be reachable: {address}"
        ray_dir = json.loads((root / "service.json").read_text())["ray_dir"]
        env = gl_env(root)
        env["RAY_TMPDIR"] = ray_dir  # same machine: the nodes share the head's directory
        # As `service status` tells a joining machine: Ray's token authentication, the root's token.
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(root / "ray-auth-token"))
        env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # Ray's loopback switch refuses joins
        joined = subprocess.run(
            [RAY, "start", f"--address={address}", "--num-cpus=1",
             '--resources={"host:nodeC": 1, "label:special": 1}'],
            env=env, text=True, capture_output=True, timeout=120)
        assert joined.returncode == 0, joined.stdout[-2000:] + joined.stderr[-2000:]
        result = client(root, """
            hosts = Job(application=Executable(exe='/bin/sh', args=['-c', 'echo "$GANGA_LIKE_HOST"']),
                        backend=Hosts(label='special'),
                        splitter=ArgSplitter(args=[['-c', 'echo "$GANGA_LIKE_HOST"']] * 2))
            pinned = Job(application=Executable(exe='/bin/echo', args=['on nodeC']),
                         backend=RayCluster(resources={'host:nodeC': 1}))
            hosts.submit(); pinned.submit()
            print(hosts.wait(timeout=120).value, pinned.wait(timeout=120).value)
            print(sorted(s.peek().strip() for s in hosts.subjobs), pinned.peek().strip())
        """)
        assert result.returncode == 0, result.stderr[-3000:]
        first, second = result.stdout.splitlines()[:2]
        assert first == "completed completed", result.stdout
        assert second == "['nodeC', 'nodeC'] on nodeC", second  # the joined node, by label and by resource
    finally:
        finish_root(root, what="the opened service and its joined nodes")
