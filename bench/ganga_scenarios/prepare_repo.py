# Build a Ganga repository of N top-level jobs, once, for scenarios (b), (c).
# Every job is a real GPI Job (Executable /bin/true, Local backend) created
# through the public interface. They are not run (running 10,000 Local jobs
# would take over half an hour): their statuses are moved along Ganga's own
# status graph with Job.updateStatus (new -> submitting -> submitted ->
# running -> completed|failed), 70 % completed, 20 % failed, 10 % new.
# Such jobs have no output sandbox, so listing them can only be cheaper for
# Ganga than listing jobs that really ran.
# usage (inside ganga): prepare_repo.py N
import sys

import _common as c
from GangaCore.GPIDev.Base.Proxy import stripProxy

n = int(sys.argv[1])
t0 = c.now()
counts = {}
for i in range(n):
    j = Job(name=f"repo-{i}", application=Executable(exe="/bin/true", args=[]),
            backend=Local())
    k = i % 10
    final = "completed" if k < 7 else ("failed" if k < 9 else "new")
    if final != "new":
        impl = stripProxy(j)
        for st in ("submitting", "submitted", "running", final):
            impl.updateStatus(st)
    counts[final] = counts.get(final, 0) + 1
t1 = c.now()
c.emit(scenario="prepare_repo", n=n, create_s=t1 - t0, counts=counts,
       n_in_registry=len(jobs))
