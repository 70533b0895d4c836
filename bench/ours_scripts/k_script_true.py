# Scenario (k''), ganga_like's side: a client's script of one job of N subjobs of
# /bin/true, run as `ganga-like run k_script_true.py N` against the root's service
# (started by the bench before, cold or not). Submit, wait until final, then report
# the client's own memory at its end: PSS (shared pages split) and peak RSS. The
# service's memory is read by bench/ours.py from outside, once the run is over.
import json
import sys

import psutil

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
j = Job(name="bench-memory", application=Executable(exe="/bin/true", args=[]),  # noqa: F821
        splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))  # noqa: F821
j.submit()
status = j.wait()
me = psutil.Process()
info = me.memory_full_info()
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print("BENCH_RESULT " + json.dumps({
    "n": n, "status": status.value, "counts": j.subjob_counts,
    "client_pss_bytes": info.pss, "client_peak_rss_bytes": hwm}), flush=True)
