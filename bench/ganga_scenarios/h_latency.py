# Scenario (h): latency from a subjob's exit to its `completed` status.
# K subjobs run /bin/sh: sleep (1 s plus a stagger, so exits fall on every
# phase of the polling period), write the time of day with `date +%s.%N`,
# exit. This script reads every subjob's status every 20 ms and records the
# first time it reads `completed`. Latency = that time - the written time.
# usage (inside ganga): h_latency.py K
import statistics
import sys
import time

import _common as c

k = int(sys.argv[1]) if len(sys.argv) > 1 else 20
stamps = c.session_root() / "stamps"
stamps.mkdir(exist_ok=True)
prog = '/bin/sleep "$1"; /bin/date +%s.%N > "$2"'
args = [["-c", prog, "sh", f"{1.0 + i * 1.0 / k:.3f}", str(stamps / f"s{i}")]
        for i in range(k)]
j = Job(name="bench-latency", application=Executable(exe="/bin/sh", args=[]),
        backend=Local(batchsize=k), splitter=ArgSplitter(args=args))
j.submit()
seen = {}
deadline = c.now() + 300
while len(seen) < k and c.now() < deadline:
    for sj in j.subjobs:
        if sj.id not in seen and sj.status in ("completed", "failed"):
            seen[sj.id] = (time.time(), sj.status)
    time.sleep(0.02)
lat = []
for i in range(k):
    try:
        t_exit = float((stamps / f"s{i}").read_text().strip())
    except (OSError, ValueError):
        continue
    if i in seen:
        lat.append(seen[i][0] - t_exit)
c.emit(scenario="h", k=k, measured=len(lat),
       statuses=sorted({s for _, s in seen.values()}),
       latency_median_s=statistics.median(lat) if lat else None,
       latency_min_s=min(lat) if lat else None,
       latency_max_s=max(lat) if lat else None,
       latencies_s=[round(x, 4) for x in lat])
