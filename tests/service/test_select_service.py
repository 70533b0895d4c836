"""``select(status=...)`` as users read: a GPI client of the real service, over ZEO (where
the index's oids are asked for with ``prefetch``). It answers as a scan does, from the
index (still readable afterwards), loading records in proportion to the matches."""

from __future__ import annotations

import json

from ganga_like.config import Config
from ganga_like.engine.core import Engine
from ganga_like.model.status_index import OID_CHUNK
from tests.index_helpers import big_master
from tests.service.test_service import client

N = 2 * OID_CHUNK + 40
FAILED = list(range(7, N, 61))


def test_selects_through_the_service_read_the_matches_by_oid(root):
    engine = Engine(Config.from_env(root=str(root)))
    try:
        big_master(engine.main, N, FAILED, plain=True)
    finally:
        engine.close()
    read = client(root, """
        import json
        from ganga_like.model.btree_fetch import fetch
        from ganga_like.model.slices import select_jobs
        master = jobs(0)
        zodb = master._p_jar

        def objects():  # in the connection's cache, ghosts included
            return sum(c["size"] for c in zodb.db().cacheDetailSize())

        out = {}
        for what, where in (("subjobs", master.subjobs), ("jobs", jobs)):
            zodb.cacheMinimize()
            zodb.getTransferCounts(clear=True)
            before = objects()
            found = [(j.id, j.status.value) for j in where.select(status="failed")]
            out[what] = {"found": found, "loaded": zodb.getTransferCounts()[0],
                         "made": objects() - before,
                         "scan": [(j.id, j.status.value)
                                  for j in select_jobs(iter(where), status="failed")]}
        zodb.cacheMinimize()
        before = objects()
        by_tree = fetch(master._subjobs, [i for i, _ in out["subjobs"]["found"]])
        out["made_by_the_tree"] = objects() - before
        index = master._subjob_index
        out["readable"] = [index.readable, jobs._registry().index.readable]
        print(json.dumps(out))
    """)
    assert read.returncode == 0, read.stderr
    out = json.loads(read.stdout.splitlines()[-1])
    assert out["readable"] == [True, True]  # (a wrong index would answer by a scan)
    assert out["subjobs"]["found"] == [[i, "failed"] for i in FAILED] == out["subjobs"]["scan"]
    assert out["jobs"]["found"] == [[0, "failed"]] + [[i + 1, "failed"] for i in FAILED]
    assert out["jobs"]["found"] == out["jobs"]["scan"]
    for what in ("subjobs", "jobs"):
        # Each match, its oid chunk, and a few records whatever N (counts, chunks, roots).
        assert out[what]["loaded"] < 2 * len(out[what]["found"]) + 20, out
    # Through the tree, each bucket holding a match makes ghosts of its ~60 subjobs.
    assert out["subjobs"]["made"] * 5 < out["made_by_the_tree"], out
