# Scenario (a): submit one job of N subjobs of /bin/true (Local backend) and
# wait until every subjob is `completed`. Timed from just before j.submit()
# to the moment every subjob reads `completed`.
# usage (inside ganga): a_submit_complete.py N [BATCHSIZE] [TIMEOUT_S]
import sys

import _common as c

n = int(sys.argv[1])
batchsize = int(sys.argv[2]) if len(sys.argv) > 2 else -1
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 1800.0

startup = c.since_process_start()
r = c.submit_true_and_wait(n, batchsize, timeout)
r.pop("job")
c.emit(scenario="a", n=n, batchsize=batchsize, startup_s=startup, **r)
