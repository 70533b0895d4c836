# Scenario (d): kill N running subjobs, until every process is gone.
# Submits one job of N subjobs of `/bin/sleep 60` with Local(batchsize=N) so
# all N run at once, waits (mode "running") until Ganga shows every subjob
# `running` (or mode "immediate": kill right after submit returns; mode
# "after=S": kill S seconds after submit returns, while wrappers start), calls
# j.kill(), then watches the process table (psutil) for every process of
# this session (payloads and Ganga's wrappers: their command line or working
# directory lies in the session directory) until none is left.
# Reported: kill_call_s (j.kill() returns), all_gone_s (kill() called ->
# no process left, or None if some were still there after GRACE_S), the
# number of payloads before the kill, leaked processes after GRACE_S (which
# this script then kills itself, so nothing is left running), Ganga's
# statuses after kill(). After the processes are gone it waits 3 s more and
# looks again, so that a late-starting wrapper counts as a leak.
# usage (inside ganga): d_kill.py N [running|immediate|after=S] [GRACE_S]
import os
import signal
import sys

import _common as c

n = int(sys.argv[1])
mode = sys.argv[2] if len(sys.argv) > 2 else "running"
grace = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
root = c.session_root()


def payloads():
    return [p for p in c.processes_under_session(root)
            if (p.info["cmdline"] or [""])[0].endswith("sleep")]


j = Job(name="bench-kill", application=Executable(exe="/bin/sleep", args=["60"]),
        backend=Local(batchsize=n),
        splitter=ArgSplitter(args=[["60"] for _ in range(n)]))
t_sub = c.now()
j.submit()
t_submitted = c.now()
all_running = None
if mode == "running":
    all_running, _ = c.wait_subjobs(j, {"running"}, timeout=180, interval=0.2)
elif mode.startswith("after="):
    c.wait_until(lambda: False, timeout=float(mode.split("=", 1)[1]))
t_ready = c.now()
counts_before = c.subjob_status_counts(j)
n_payloads_before = len(payloads())
n_procs_before = len(c.processes_under_session(root))

t0 = c.now()
j.kill()
t_killed = c.now()

gone = c.wait_until(lambda: not c.processes_under_session(root), timeout=grace,
                    interval=0.01)
t_gone = c.now()
# a process that appears late (a wrapper still starting) is a leak too
c.wait_until(lambda: False, timeout=3.0)
leaked = c.processes_under_session(root)
leaked_payloads = [p for p in leaked if (p.info["cmdline"] or [""])[0].endswith("sleep")]
leak_desc = [" ".join(p.info["cmdline"] or [])[:120] for p in leaked[:5]]
# clean up what Ganga left behind
for p in leaked:
    try:
        p.send_signal(signal.SIGKILL)
    except Exception:
        pass
c.wait_until(lambda: not c.processes_under_session(root), timeout=10)
counts_after = c.subjob_status_counts(j)

c.emit(scenario="d", n=n, mode=mode, submit_s=t_submitted - t_sub,
       wait_running_s=t_ready - t_submitted, all_running=all_running,
       counts_before_kill=counts_before, payloads_before_kill=n_payloads_before,
       processes_before_kill=n_procs_before,
       kill_call_s=t_killed - t0,
       all_gone_s=(t_gone - t0) if gone else None,
       leaked_processes=len(leaked), leaked_payloads=len(leaked_payloads),
       leak_examples=leak_desc, grace_s=grace,
       counts_after_kill=counts_after, master_status=j.status,
       left_after_cleanup=len(c.processes_under_session(root)))
