"""Every verb of the table through both sessions: an in-process Engine on a FileStorage
(the test Ray) and a ClientSession against a real service (a script of its own). Both
return what the table declares, in the same shape, and leave the jobs in the same
statuses; the client's one generic call also carries the service's own verbs.
"""

from __future__ import annotations

import json
import re

import psutil

from ganga_like.channel import origin
from ganga_like.channel.verbs import SERVICE_VERBS, VERBS
from ganga_like.model.session import JOB_VERBS
from tests.service.test_service import client, service_pid, wait_for
from tests.service.verb_scenario import every_verb
from tests.test_cli import finish_root

CLIENT_SCRIPT = """
import json
import re
from ganga_like.client.default import default_session
from ganga_like.channel.verbs import SERVICE_VERBS
from tests.service.verb_scenario import describe, every_verb

session = default_session()
seen = every_verb(session)
for verb in SERVICE_VERBS:
    value = session.run_verb(verb.name)  # the same generic call as every job verb
    seen[verb.name] = {"shape": describe(value), "declared": verb.result.matches(value),
                       "value": value if verb.name == "stop" else sorted(value)}
print("RESULT", json.dumps(seen))
"""


def test_every_verb_gives_the_same_shape_through_the_engine_and_a_client(session, tmp_path):
    engine = every_verb(session)
    root = tmp_path / "client"  # (the engine has tmp_path / "gl")
    try:
        result = client(root, CLIENT_SCRIPT, timeout=300)
        assert result.returncode == 0, result.stderr
        line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
        remote = json.loads(line.removeprefix("RESULT "))
        # The script's last verb stopped the service: let it finish before the check below
        # (`service stop` while one is on its way out fails: ServiceLost).
        wait_for(lambda: not psutil.pid_exists(service_pid(root)), timeout=90,
                 what="the service to stop")
    finally:
        finish_root(root, what="the verb table's service")
    assert set(remote) == set(VERBS) and set(engine) == set(JOB_VERBS)
    # Who asked is named in the cause: this process in-process (as its command line names
    # it: pytest, or an xdist worker), the client's through the service (a script run by
    # `python -c`); the number is the repository's.
    assert re.fullmatch(rf"force_status #\d+ from {re.escape(origin.this_process())}",
                        engine["force_status"].pop("cause"))
    assert re.fullmatch(r"force_status #\d+ from a Python process, pid \d+",
                        remote["force_status"].pop("cause"))
    for name, seen in engine.items():
        assert seen["declared"], (name, seen)
        assert remote[name] == seen, (name, remote[name], seen)
    assert engine["wait"] == {"shape": "list[Status]", "declared": True, "status": "completed"}
    assert engine["kill"]["status"] == "killed" and engine["submit"]["shape"] == "Job"
    assert engine["leaks"]["shape"] == "list[dict(backend,fqid,handle,reaped,reason,source)]"
    for verb in SERVICE_VERBS:
        assert remote[verb.name]["declared"], remote[verb.name]
    assert remote["stop"]["value"] == "stopping"
    assert {"pid", "ready", "root"} <= set(remote["hello"]["value"])
