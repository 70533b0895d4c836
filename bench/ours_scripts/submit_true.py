# Scenario "submit through the service", ganga_like's side: a client's script that
# submits one master of N subjobs of /bin/true, run as `ganga-like run submit_true.py N`
# against the root's running service; reports how long `j.submit()` took to return
# and the client's CPU for it, then kills the master (the subjobs' run is not timed).
import json
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
j = Job(name="bench-submit", application=Executable(exe="/bin/true", args=[]),  # noqa: F821
        splitter=ArgSplitter(args=[[] for _ in range(n)]))  # noqa: F821
wall, cpu = time.perf_counter(), time.process_time()
j.submit()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
status = j.status
j.kill()
print("BENCH_RESULT " + json.dumps({
    "n": n, "submit_s": wall, "client_cpu_s": cpu, "status_at_return": str(status)}), flush=True)
