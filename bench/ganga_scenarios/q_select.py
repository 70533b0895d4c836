# Issue 22, point 5: select by status, 100 matches among N (bench/bench_select.py).
# usage (inside ganga): q_select.py build N   -- job 0: a master of N subjobs (100 failed,
#                                                spread evenly, the rest completed), then N
#                                                plain jobs (99 failed, the rest completed);
#                                                statuses moved with Job.updateStatus along
#                                                Ganga's own graph, nothing runs
#                       q_select.py select    -- in a fresh Ganga process: time
#                                                jobs(0).subjobs.select(status='failed') and
#                                                jobs.select(status='failed'), each followed by
#                                                reading every match's status
import sys

import _common as c
from GangaCore.GPIDev.Base.Proxy import stripProxy

MATCHES = 100


def finish(impl, failed):
    for st in ("submitting", "submitted", "running", "failed" if failed else "completed"):
        impl.updateStatus(st)


if sys.argv[1] == "build":
    n = int(sys.argv[2])
    step = n // MATCHES
    t0 = c.now()
    master = Job(name="master", application=Executable(exe="/bin/true", args=[]),
                 backend=Local(), splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
    impl = stripProxy(master)
    impl._doSplitting()
    for sj in impl.subjobs:
        finish(sj, sj.id % step == step // 2)
    for i in range(1, n + 1):
        j = Job(name=f"plain-{i}", application=Executable(exe="/bin/true", args=[]),
                backend=Local())
        finish(stripProxy(j), i % step == step // 2 and i < n)
    c.emit(scenario="q_build", n=n, build_s=c.now() - t0, n_in_registry=len(jobs),
           n_subjobs=len(jobs(0).subjobs))
else:
    startup = c.since_process_start()
    master = jobs(0)
    t0 = c.now()
    found = master.subjobs.select(status="failed")
    statuses = [sj.status for sj in found]
    t1 = c.now()
    top = jobs.select(status="failed")
    top_statuses = [j.status for j in top]
    t2 = c.now()
    c.emit(scenario="q_select", startup_s=startup, subjobs_s=t1 - t0, jobs_s=t2 - t1,
           subjobs_found=len(statuses), jobs_found=len(top_statuses))
