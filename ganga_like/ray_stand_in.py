"""What the raylet of our own head runs in place of Ray's two agents (issue 22, memory).

Ray's raylet starts a dashboard agent (metrics, the dashboard's per-node API) and a
runtime-env agent (it installs ``runtime_env``s), waits for the ports they write into the
session directory, and exits when either of them exits. ganga_like uses neither: it
serves no dashboard, collects no metrics (``enable_metrics_collection`` is off on its
head) and never passes a ``runtime_env``. Each agent is a Python process with Ray
imported, about 50 MiB PSS; this stand-in is about 5. It does what the raylet waits for
and nothing more:

1. Write "not in use" (-1) for the dashboard agent's three ports, as Ray's own agent
   does in its minimal form, so that nothing tries to reach them.
2. Hold a socket bound to the runtime-env agent's port (the one given, else any free
   one), so that no other process takes it, and write that port; nothing listens on
   it, so a connection is refused at once. Each port file is
   ``<session dir>/<port name>_<node id>``, written whole, then renamed: the raylet never
   reads half a number.
3. Live until the raylet goes: it stops its agents with SIGTERM, which ends this process;
   a raylet killed outright leaves it to another parent, which it notices within a second.

Run as ``python -S -I ray_stand_in.py <the agent's own arguments>``: without ``site`` or
the user's environment, so it imports only the standard library and never Ray.
``ray_runtime.stand_in_agents`` puts it on the raylet's command line.
"""

from __future__ import annotations

import os
import socket
import sys
import time

# The agent's options that name a port -> the file the raylet reads that port from.
NOT_IN_USE = {  # the dashboard agent's: -1, as its minimal form writes
    "grpc-port": "metrics_agent_port",
    "metrics-export-port": "metrics_export_port",
    "listen-port": "dashboard_agent_listen_port",
}
HELD = {"runtime-env-agent-port": "runtime_env_agent_port"}  # the runtime-env agent's
UNUSED_PORT = -1
PARENT_CHECK_S = 1.0


def options(argv: list[str]) -> dict[str, str]:
    """The ``--name=value`` options among ``argv``, by name (flags without a value skipped)."""
    found = {}
    for word in argv:
        if word.startswith("--") and "=" in word:
            name, value = word[2:].split("=", 1)
            found[name] = value
    return found


def reserve(address: str, port: int) -> socket.socket:
    """A socket bound to ``port`` on ``address``, not listening; any free port if that one
    is taken (as the agent itself would end up on another), on loopback if ``address``
    cannot be bound."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for where in ((address, port), (address, 0), ("127.0.0.1", 0)):
        try:
            held.bind(where)
            return held
        except OSError:
            continue
    held.close()
    raise OSError(f"ray_stand_in: no port to bind on {address} or 127.0.0.1")


def write_port(session_dir: str, name: str, node_id: str, port: int) -> None:
    final = os.path.join(session_dir, f"{name}_{node_id}")
    partial = os.path.join(session_dir, f".{name}_{node_id}.{os.getpid()}")
    with open(partial, "w") as handle:
        handle.write(str(port))
    os.rename(partial, final)


def main(argv: list[str]) -> int:
    given = options(argv)
    try:
        session_dir, node_id = given["session-dir"], given["node-id"]
    except KeyError as missing:
        print(f"ray_stand_in: no --{missing.args[0]}= among its arguments: "
              f"it runs only as a raylet's agent", file=sys.stderr)
        return 2
    parent = os.getppid()
    address = given.get("node-ip-address", "127.0.0.1")
    held = []
    for option, name in NOT_IN_USE.items():
        if option in given:
            write_port(session_dir, name, node_id, UNUSED_PORT)
    for option, name in HELD.items():
        if option in given:
            bound = reserve(address, int(given[option]))
            held.append(bound)
            write_port(session_dir, name, node_id, bound.getsockname()[1])
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
