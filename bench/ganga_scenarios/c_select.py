# Scenario (c): jobs.select by status over a repository of N jobs.
# Reported: select_s (jobs.select(status='failed') then
# jobs.select(status='completed'), both timed; the first one pays for any
# lazy loading), and each one separately.
# usage (inside ganga): c_select.py
import _common as c

startup = c.since_process_start()
t0 = c.now()
failed = jobs.select(status="failed")
t1 = c.now()
completed = jobs.select(status="completed")
t2 = c.now()
n_failed, n_completed = len(failed), len(completed)
c.emit(scenario="c", n=len(jobs), startup_s=startup,
       select_s=t2 - t0, select_failed_s=t1 - t0, select_completed_s=t2 - t1,
       n_failed=n_failed, n_completed=n_completed)
