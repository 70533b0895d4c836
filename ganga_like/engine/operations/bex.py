"""``submit_bex``: a BEX job file queued on hosts (one master, one subjob per host).

Everything that can refuse it is checked before anything is stored, in the service
under its write lock: the file's format, its ID (claimed in the queue by creating
``queue/jobs/<ID>.job``, which the file system lets only one claim do), and the hosts
(each known to the Hosts backend). A refusal is one line and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...backends.hosts.config import Hosts
from ...bex.files import QueueDir
from ...bex.jobfile import parse_job
from ...bex.submit import check_hosts, job_of
from ...errors import BexSubmitRefused
from ...ray_runtime import import_ray
from ..context import EngineContext
from .submit import submit

HOSTS_TIMEOUT = 30.0  # seconds the Hosts backend's actor may take to say which hosts it knows


def known_hosts(ctx: EngineContext) -> list[str]:
    """The hosts the Hosts backend knows now (its actor looks at the cluster's nodes)."""
    ray = import_ray()
    answer = ray.get(ctx.backends.actor(Hosts()).ping.remote(), timeout=HOSTS_TIMEOUT)
    return sorted(str(host["name"]) for host in answer.get("hosts", ()))


def submit_bex(ctx: EngineContext, text: str, hosts: Sequence[str], source: str = "<job file>",
               environment: Mapping[str, str] | None = None) -> str:
    """Parse, check, claim the ID, store and submit; the new job's id."""
    bex = parse_job(text, source)
    hosts = check_hosts(bex.id, list(hosts), known_hosts(ctx))
    queue = QueueDir(ctx.store.config.bex_queue)
    if not queue.claim(bex.id, text):
        raise BexSubmitRefused(bex.id, f"the queue has a job with this ID already "
                                       f"({queue.job_file(bex.id)}): give the file another ID")
    try:
        job = ctx.store.register(job_of(bex, hosts))
    except BaseException:
        queue.unclaim(bex.id)
        raise
    submit(ctx, job, environment=environment)
    return job.fqid
