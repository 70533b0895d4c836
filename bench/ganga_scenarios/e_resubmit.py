# Scenario (e): resubmit N failed subjobs until done.
# Each subjob runs /bin/sh: it fails (exit 1) the first time and succeeds the
# second (a marker file per subjob in the session directory). We submit, wait
# until every subjob is `failed`, then time j.resubmit() (Ganga resubmits the
# failed subjobs of the master) until every subjob is `completed`.
# usage (inside ganga): e_resubmit.py N [BATCHSIZE]
import sys

import _common as c

n = int(sys.argv[1])
batchsize = int(sys.argv[2]) if len(sys.argv) > 2 else -1
markers = c.session_root() / "markers"
markers.mkdir(exist_ok=True)
prog = ('if [ -e "$1" ]; then exit 0; fi; : > "$1"; exit 1')
args = [["-c", prog, "sh", str(markers / f"m{i}")] for i in range(n)]
j = Job(name="bench-resubmit", application=Executable(exe="/bin/sh", args=[]),
        backend=Local(batchsize=batchsize), splitter=ArgSplitter(args=args))
t_first = c.now()
j.submit()
ok_failed, counts_failed = c.wait_subjobs(j, {"failed"}, timeout=600)
c.wait_until(lambda: j.status == "failed", timeout=30)
t_failed = c.now()
master_before = j.status

t0 = c.now()
j.resubmit()
t_resubmitted = c.now()
ok, counts = c.wait_subjobs(j, {"completed"}, timeout=600)
t_done = c.now()
c.emit(scenario="e", n=n, batchsize=batchsize, first_round_s=t_failed - t_first,
       all_failed=ok_failed, counts_after_first=counts_failed,
       master_before_resubmit=master_before,
       resubmit_call_s=t_resubmitted - t0, resubmit_to_all_completed_s=t_done - t0,
       ok=ok, counts=counts, master_status=j.status)
