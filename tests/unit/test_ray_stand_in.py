"""The stand-in for the raylet's two agents (issue 22, memory): what the raylet waits for,
and nothing left when the raylet goes.

The whole head running with it (the service's Ray, its process table and the stand-ins'
size) is held by ``tests/service/test_ray_start.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from ganga_like import ray_stand_in
from ganga_like.ray_runtime import STAND_IN, stand_in_agents, stands_in_for_agents

NODE = "ab" * 28


def _agent(script: str, *arguments: str) -> str:
    return subprocess.list2cmdline([sys.executable, "-u", script, *arguments])


def test_the_raylets_agents_become_the_stand_in_with_their_own_arguments():
    dashboard = ["--node-id=" + NODE, "--grpc-port=0", "--listen-port=52365",
                 "--session-dir=/tmp/a dir/session_1", "--head"]
    runtime_env = ["--node-id=" + NODE, "--runtime-env-agent-port=0", "--session-dir=/s"]
    command = ["/ray/raylet", "--node_ip_address=127.0.0.1",
               "--dashboard_agent_command=" + _agent("/ray/dashboard/agent.py", *dashboard),
               "--runtime_env_agent_command="
               + _agent("/ray/_private/runtime_env/agent/main.py", *runtime_env),
               "--num_prestart_python_workers=2"]
    replaced = stand_in_agents(command)
    assert replaced[:2] == command[:2] and replaced[-1] == command[-1]
    stand_in = [sys.executable, "-S", "-I", STAND_IN]
    assert replaced[2] == "--dashboard_agent_command=" + subprocess.list2cmdline(
        stand_in + dashboard)
    assert replaced[3] == "--runtime_env_agent_command=" + subprocess.list2cmdline(
        stand_in + runtime_env)


def test_only_the_ray_releases_it_was_seen_to_work_with_run_it():
    assert stands_in_for_agents("2.60.0") and stands_in_for_agents("2.60.3")
    assert not any(map(stands_in_for_agents, ("2.6.0", "2.59.1", "2.61.0", "3.60.0")))


def test_an_agent_command_of_another_shape_is_left_to_ray():
    command = ["/ray/raylet", "--dashboard_agent_command=/opt/agent --port=1"]
    assert stand_in_agents(command) == command


def _port_files(session_dir: str) -> dict[str, int]:
    return {name.rsplit("_", 1)[0]: int(open(os.path.join(session_dir, name)).read())
            for name in os.listdir(session_dir) if name.endswith(NODE)}


def _start_under_a_parent(tmp_path, *ports: str) -> tuple[subprocess.Popen, int]:
    """The stand-in started by a parent of its own (as the raylet starts it); returns the
    parent and the stand-in's pid."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); print(p.pid, flush=True);"
         " p.wait()",
         sys.executable, "-S", "-I", STAND_IN, f"--node-id={NODE}",
         f"--session-dir={tmp_path}", *ports],
        stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def _wait_for(what, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.02)
    return found


def test_the_dashboard_ports_are_not_in_use_and_the_runtime_env_port_is_held(tmp_path):
    with socket.socket() as taken:  # another process holds the port the agent was given
        taken.bind(("127.0.0.1", 0))
        given = taken.getsockname()[1]
        parent, pid = _start_under_a_parent(
            tmp_path, "--grpc-port=0", "--listen-port=52365", "--metrics-export-port=0",
            f"--runtime-env-agent-port={given}", "--minimal")
        try:
            ports = _wait_for(lambda: (len(files := _port_files(str(tmp_path))) == 4) and files)
            assert {name: port for name, port in ports.items() if port == -1} == {
                "metrics_agent_port": -1, "metrics_export_port": -1,
                "dashboard_agent_listen_port": -1}
            held = ports["runtime_env_agent_port"]
            assert held not in (-1, 0, given)  # another free port, as the agent would take
            with socket.socket() as other:  # held: no other process can take it
                with pytest.raises(OSError):
                    other.bind(("127.0.0.1", held))
            with socket.socket() as client:  # and refused at once, never left hanging
                client.settimeout(5)
                with pytest.raises(ConnectionRefusedError):
                    client.connect(("127.0.0.1", held))
            assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]
            parent.send_signal(signal.SIGKILL)  # a raylet killed outright
            parent.wait()
            _wait_for(lambda: not psutil.pid_exists(pid),
                      timeout=5 * ray_stand_in.PARENT_CHECK_S)
        finally:
            parent.kill()
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_from_the_raylet_ends_it_at_once(tmp_path):
    parent, pid = _start_under_a_parent(tmp_path, "--runtime-env-agent-port=0")
    try:
        _wait_for(lambda: "runtime_env_agent_port" in _port_files(str(tmp_path)))
        os.kill(pid, signal.SIGTERM)
        assert parent.wait(timeout=5) == 0  # the parent's wait() returned: it ended
    finally:
        parent.kill()


def test_run_without_a_session_it_says_what_it_is_in_one_line():
    done = subprocess.run([sys.executable, "-S", "-I", STAND_IN, "--node-id=" + NODE],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ray_stand_in: no --session-dir= among its arguments: it runs only as a raylet's agent"]
