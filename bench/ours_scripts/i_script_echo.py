# Scenario (i), ganga_like's side: the user's script of
# bench/ganga_scenarios/i_script_echo.py, run as `ganga-like run i_script_echo.py N`
# (the GPI names are preloaded; `from ganga_like.gpi import *` in a plain
# `python` script does the same). The `ganga-like` process is a client of the
# root's service: it starts the service if none runs (a cold run), else
# connects to it. One job of N subjobs of /bin/echo (an ArgSplitter of N
# args), submit, j.wait(), exit. Prints one line `BENCH_RESULT {json}`: the
# headline (fork to exit) is measured by bench/ours.py around this process.
import json
import os
import sys
import time


def _vmhwm() -> int | None:
    """Peak RSS of this process (VmHWM), as the Ganga script reports its own."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def _since_fork() -> float:
    with open(f"/proc/{os.getpid()}/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
startup = _since_fork()  # fork -> script body: interpreter, imports, service connection
t0 = time.monotonic()
j = Job(name="bench-script", application=Executable(exe="/bin/echo", args=[]),
        splitter=ArgSplitter(args=[[f"hello {i}"] for i in range(n)]))
j.submit()
t_submitted = time.monotonic()
status = j.wait()
t_done = time.monotonic()
print("BENCH_RESULT " + json.dumps({
    "scenario": "i", "n": n, "backend": "Local() default concurrency",
    "startup_s": startup, "submit_s": t_submitted - t0,
    "submit_to_completed_s": t_done - t0, "to_completed_since_fork_s": _since_fork(),
    "status": status.value, "counts": j.subjob_counts, "peak_rss_bytes": _vmhwm()}),
    flush=True)
