# Scenario (g): peak memory (RSS) of a Ganga session that submits N subjobs of
# /bin/true and follows them to `completed`. Reports the RSS right after
# start-up, and the peak (getrusage ru_maxrss) at the end. The runner also
# records the peak RSS of the whole process from wait4().
# usage (inside ganga): g_memory.py N [BATCHSIZE]
import sys

import _common as c

n = int(sys.argv[1])
batchsize = int(sys.argv[2]) if len(sys.argv) > 2 else -1
rss_start = c.rss_bytes()
peak_start = c.peak_rss_bytes()
r = c.submit_true_and_wait(n, batchsize, 1800.0)
r.pop("job")
c.emit(scenario="g", n=n, ok=r["ok"], counts=r["counts"],
       rss_after_startup_bytes=rss_start, peak_rss_after_startup_bytes=peak_start,
       peak_rss_bytes=c.peak_rss_bytes())
