# Scenario (j), ganga_like's side: the *other* client. A plain Python process
# holding the GPI open (`from ganga_like.gpi import *`) while `ganga-like kill`
# runs in another process. It submits one job of `/bin/sleep 60`, waits until
# it reads `running` and prints `READY {json}`; then it answers one command per
# line on stdin with one line `{json}` on stdout:
#   status <fqid>     the job's status as this client reads it now
#   kill_in_session   submit a second `/bin/sleep 60` job, wait until running,
#                     time j.kill() here (the in-session kill, as Ganga's
#                     d_kill.py does with one subjob) and until its processes
#                     are gone
# and exits at the end of its stdin (run by bench/ours.py: kill_from_cli).
import json
import sys
import time

from ganga_like.backends.runtime.procs import find_by_marker
from ganga_like.gpi import Executable, Job, session


def sleeper(name: str):
    j = Job(name=name, application=Executable(exe="/bin/sleep", args=["60"]))
    j.submit()
    deadline = time.monotonic() + 120
    while j.status.value != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
        session().refresh()
    return j


def ours() -> list[int]:
    return [pid for pid, _ct, _m in find_by_marker(session().repo_uuid + ":")]


def kill_in_session() -> dict:
    j = sleeper("bench-kill-in-session")
    before = ours()
    t0 = time.monotonic()
    j.kill()
    t1 = time.monotonic()
    while ours() and time.monotonic() - t0 < 20:
        time.sleep(0.005)
    t2 = time.monotonic()
    left = ours()
    session().refresh()
    return {"fqid": j.fqid, "processes_before_kill": len(before), "kill_call_s": t1 - t0,
            "all_gone_s": None if left else t2 - t0, "left": len(left),
            "status_after_kill": j.status.value}


first = sleeper("bench-kill-cli")
print("READY " + json.dumps({"fqid": first.fqid, "status": first.status.value,
                             "repo_uuid": session().repo_uuid}), flush=True)
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "status":
        session().refresh()
        print(json.dumps({"status": session().jobs.get(words[1]).status.value}), flush=True)
    elif words[0] == "kill_in_session":
        print(json.dumps(kill_in_session()), flush=True)
