# Scenario (a): submit one job of N subjobs of /bin/true (Local backend) and
# wait until every subjob is `completed`.
# usage (inside ganga): a_submit_complete.py N [BATCHSIZE]
# Also reports what (f) and (g) need: bytes on disk per subjob, peak RSS.
import sys

import _common as c

n = int(sys.argv[1])
batchsize = int(sys.argv[2]) if len(sys.argv) > 2 else -1
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 1800.0

t_script = c.since_process_start()
rss_start = c.rss_bytes()

j = Job(name=f"bench-a-{n}",
        application=Executable(exe="/bin/true", args=[]),
        backend=Local(batchsize=batchsize),
        splitter=ArgSplitter(args=[[] for _ in range(n)]))

t0 = c.now()
j.submit()
t_submitted = c.now()
ok, counts = c.wait_subjobs(j, {"completed"}, timeout=timeout)
t_done = c.now()
# the master's own status lags behind the subjobs'; record when it follows
c.wait_until(lambda: j.status == "completed", timeout=30, interval=0.05)
t_master = c.now()

gangadir = c.session_root() / "gangadir"
alloc, apparent, files = c.tree_usage(gangadir)

c.emit(scenario="a", n=n, batchsize=batchsize, ok=ok, counts=counts,
       startup_s=t_script,
       submit_s=t_submitted - t0,
       submit_to_all_completed_s=t_done - t0,
       master_completed_s=t_master - t0,
       master_status=j.status,
       gangadir_bytes=alloc, gangadir_apparent_bytes=apparent, gangadir_files=files,
       rss_before_job_bytes=rss_start)
