# Scenario (b): start a Ganga session on a repository of N jobs and list it.
# Reported: startup_s (process fork to the first line of this script: Ganga
# loads its registry index in this phase), list_s (rendering `jobs`, the
# table a user sees when typing `jobs`), read_status_s (reading every job's
# status through the GPI). The runner adds outer_wall_s: fork to exit,
# which includes Ganga's shutdown.
# usage (inside ganga): b_list.py
import _common as c

startup = c.since_process_start()
t0 = c.now()
text = str(jobs)
t1 = c.now()
statuses = [j.status for j in jobs]
t2 = c.now()
counts = {}
for s in statuses:
    counts[s] = counts.get(s, 0) + 1
c.emit(scenario="b", n=len(statuses), startup_s=startup, list_s=t1 - t0,
       list_lines=text.count("\n"), read_status_s=t2 - t1, counts=counts,
       startup_plus_list_s=startup + (t1 - t0))
