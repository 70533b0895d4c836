# Scenario (i): a user's Ganga script, end to end: one job of N subjobs of
# /bin/echo (an ArgSplitter of N args), submit, wait until it is `completed`,
# exit. The headline is measured by the runner: fork to exit of this `ganga`
# process (`outer_wall_s`), Ganga's start-up and shutdown included.
# With the benchmark's tuned gangarc the monitoring loop runs by itself
# ([PollThread]autostart = True, polling 1 s): the script polls j.status.
# With Ganga's defaults the monitoring is off in a script session: the script
# calls runMonitoring() until the job is final, as Ganga's documentation says.
# usage (inside ganga): i_script_echo.py N [BATCHSIZE]
import sys
import time

import _common as c
from GangaCore.Utility.Config import getConfig

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
batchsize = int(sys.argv[2]) if len(sys.argv) > 2 else -1
startup = c.since_process_start()
autostart = bool(getConfig("PollThread")["autostart"])
final = ("completed", "failed", "killed")

t0 = c.now()
j = Job(name="bench-script", application=Executable(exe="/bin/echo", args=[]),
        backend=Local(batchsize=batchsize),
        splitter=ArgSplitter(args=[[f"hello {i}"] for i in range(n)]))
j.submit()
t_submitted = c.now()
monitoring_calls = monitoring_false = 0
while j.status not in final:
    if autostart:
        time.sleep(0.05)
    else:
        ok = runMonitoring()
        monitoring_calls += 1
        monitoring_false += not ok
        time.sleep(0.05)
t_done = c.now()
peak = c.peak_rss_bytes()
c.emit(scenario="i", n=n, batchsize=batchsize, autostart=autostart,
       monitoring_calls=monitoring_calls, monitoring_false=monitoring_false, startup_s=startup,
       submit_s=t_submitted - t0, submit_to_completed_s=t_done - t0,
       to_completed_since_fork_s=c.since_process_start(), status=j.status,
       counts=c.subjob_status_counts(j), peak_rss_bytes=peak,
       # Ganga's whole session is this one process (its Local wrappers have exited)
       total_rss_bytes=peak)
