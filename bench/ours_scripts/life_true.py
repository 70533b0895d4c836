# Scenario "back to back", ganga_like's side: a client's script that submits one master
# of N subjobs of /bin/true, run as `ganga-like run life_true.py N` against the root's
# running service, and polls until the master is final; reports when `j.submit()`
# returned and when the master was final, from before the submit.
import json
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
j = Job(name="bench-life", application=Executable(exe="/bin/true", args=[]),  # noqa: F821
        splitter=ArgSplitter(args=[[] for _ in range(n)]))  # noqa: F821
wall = time.perf_counter()
j.submit()
submitted = time.perf_counter() - wall
while j.status not in ("completed", "failed", "killed"):
    time.sleep(0.05)
print("BENCH_RESULT " + json.dumps({
    "n": n, "submit_s": submitted, "all_final_s": time.perf_counter() - wall,
    "status": str(j.status)}), flush=True)
