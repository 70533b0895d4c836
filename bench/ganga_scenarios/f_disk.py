# Scenario (f): bytes on disk per subjob. Submit N subjobs of /bin/true, wait
# until completed, then measure the gangadir (repository + workspace) minus
# what an empty session already had. Bytes are allocated blocks (du), files
# counted too. The Local backend's scratch dirs are removed by Ganga itself
# (remove_workdir=True, its default) and are not counted.
# usage (inside ganga): f_disk.py N [BATCHSIZE]
import sys

import _common as c

n = int(sys.argv[1])
batchsize = int(sys.argv[2]) if len(sys.argv) > 2 else -1
gangadir = c.session_root() / "gangadir"

base_alloc, base_apparent, base_files = c.tree_usage(gangadir)
r = c.submit_true_and_wait(n, batchsize, 1800.0)
r.pop("job")
alloc, apparent, files = c.tree_usage(gangadir)
c.emit(scenario="f", n=n, ok=r["ok"], counts=r["counts"],
       bytes_total=alloc - base_alloc,
       apparent_bytes_total=apparent - base_apparent,
       files_total=files - base_files,
       bytes_per_subjob=(alloc - base_alloc) / n,
       # Ganga's XML repository rewrites a job's file in place: nothing to pack, the
       # same figure stands beside ours after a pack (row p).
       bytes_per_subjob_after_pack=(alloc - base_alloc) / n,
       apparent_bytes_per_subjob=(apparent - base_apparent) / n,
       files_per_subjob=(files - base_files) / n)
