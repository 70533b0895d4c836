"""``Slurm()``: run a job's subjobs as one Slurm job array on the site's Slurm.

The fields that shape each subjob's task travel in ``SubjobSpec.options``
(:meth:`Slurm.spec_options`); the actor turns them into ``sbatch`` options
(``script.sbatch_options``). What can be told without Slurm is refused when it is
set (a time limit in a wrong form, an ``extra`` option that would override ours);
what needs Slurm is refused at submit, before anything is stored
(:meth:`Slurm.check_submit`: ``sbatch`` missing, Slurm not answering, an unknown
partition).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...model.backend_base import TASK_INDEX, run_handle
from ...model.component import Field, ReadOnly, check_positive_int, check_str
from ..config import BackendConfig
from ..resources import ResourceFields
from . import commands

# Slurm's time formats (sbatch --time): minutes, minutes:seconds, hours:minutes:seconds,
# days-hours, days-hours:minutes, days-hours:minutes:seconds.
TIME_FORMS = "'MM', 'MM:SS', 'HH:MM:SS', 'D-HH', 'D-HH:MM', 'D-HH:MM:SS' or 'UNLIMITED'"
_TIME_RE = re.compile(r"(\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}|UNLIMITED|INFINITE)\Z")

# sbatch options the backend sets itself, or that a field of Slurm() sets: an ``extra``
# option may not override them. Long name -> what to use instead.
OURS: dict[str, str] = {
    "--array": "the backend submits the subjobs as the array",
    "--output": "the backend writes stdout and stderr to each subjob's output directory",
    "--error": "the backend writes stdout and stderr to each subjob's output directory",
    "--input": "a subjob's stdin is /dev/null",
    "--job-name": "the backend names the job after its subjobs (to find them again)",
    "--chdir": "a subjob runs in its own output directory",
    "--export": "a subjob gets the environment it was submitted with, plus application.env",
    "--export-file": "a subjob gets the environment it was submitted with, plus application.env",
    "--parsable": "the backend reads sbatch's answer itself",
    "--wrap": "the backend writes the batch script",
    "--wait": "the backend watches the array; sbatch must not block",
    "--test-only": "the backend submits for real",
    "--open-mode": "the backend writes each subjob's output itself",
    "--ntasks": "each subjob is one task",
    "--partition": "use Slurm(partition=...)",
    "--account": "use Slurm(account=...)",
    "--qos": "use Slurm(qos=...)",
    "--time": "use Slurm(time=...)",
    "--cpus-per-task": "use Slurm(cpus=...)",
    "--mem": "use Slurm(memory=...)",
    "--gres": "use Slurm(gpus=...) and Slurm(resources={name: count})",
    "--gpus": "use Slurm(gpus=...)",
}
SHORT: dict[str, str] = {"-a": "--array", "-o": "--output", "-e": "--error", "-i": "--input",
                         "-J": "--job-name", "-D": "--chdir", "-W": "--wait", "-n": "--ntasks",
                         "-p": "--partition", "-A": "--account", "-q": "--qos", "-t": "--time",
                         "-c": "--cpus-per-task", "-G": "--gpus"}


def check_time(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)  # minutes, as sbatch reads a bare number
    value = check_str(value).strip()
    if value and not _TIME_RE.match(value):
        raise ValueError(f"{value!r} is not a Slurm time limit")
    return value


def check_extra(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"got {type(value).__name__}")
    options = tuple(check_str(item) for item in value)
    expects_value = False
    for item in options:
        if not item.startswith("-"):
            if not expects_value:
                raise ValueError(f"{item!r} is not an sbatch option (options start with '-')")
            expects_value = False
            continue
        name = item.split("=", 1)[0] if item.startswith("--") else SHORT.get(item[:2], item[:2])
        taken = _ours(name)
        if taken:
            raise ValueError(f"{item!r} would override the backend's own {taken[0]} ({taken[1]})")
        expects_value = item.startswith("--") and "=" not in item
    return options


def _ours(name: str) -> tuple[str, str] | None:
    """The option of ours ``name`` sets (sbatch takes unambiguous abbreviations), if any."""
    if name in OURS:
        return name, OURS[name]
    if name.startswith("--") and len(name) > 3:
        for long_name, why in OURS.items():
            if long_name.startswith(name):
                return long_name, why
    return None


def _check_limit(value: object) -> int | None:
    return None if value is None else check_positive_int(value)


def _slurm_id(backend: BackendConfig) -> str | int:
    """Ganga's ``j.backend.id`` on Slurm: the Slurm job id of the run (-1 before it has one)."""
    handle = run_handle(backend)
    return handle[TASK_INDEX] or -1 if handle is not None else -1


class Slurm(ResourceFields, BackendConfig):
    """Run the subjobs on Slurm, as one job array (one task per subjob).

    ``partition``, ``account``, ``qos`` and ``time`` are sbatch's; ``cpus``, ``gpus``,
    ``memory`` and ``resources`` (the request every backend shares, ``backends.resources``)
    what each subjob's task asks for (``--cpus-per-task``, ``--mem``, ``--gres``);
    ``max_running`` how many tasks of the array run at once (``--array=...%N``); ``extra``
    more sbatch options. ``conf``
    names the slurm.conf of the cluster to use ('' for the machine's own). The payload
    runs under the same wrapper as Local's, in the subjob's output directory, which
    must be on a filesystem the Slurm nodes share with this machine.
    """

    partition = Field("", check_str, "a partition's name, or '' for the cluster's default",
                      "the Slurm partition (Ganga's queue)")
    account = Field("", check_str, "an account's name, or '' for yours by default",
                    "the Slurm account charged")
    qos = Field("", check_str, "a QOS name, or '' for the default", "the Slurm quality of service")
    time = Field("", check_time, f"{TIME_FORMS}, or '' for the partition's default",
                 "each subjob's time limit")
    max_running = Field(None, _check_limit, "a positive whole number or None (no limit)",
                        "how many subjobs of the job run at once")
    extra = Field((), check_extra, "a list of sbatch options, e.g. ['--constraint=haswell'], "
                  "none of those the backend sets", "more sbatch options")
    conf = Field("", check_str, "the path of a slurm.conf, or '' for the machine's own",
                 "which Slurm cluster (SLURM_CONF for its commands)")

    id = ReadOnly(_slurm_id, "the Slurm job id of the (sub)job's run: <array id>_<task id>; "
                  "-1 before Slurm took it")

    def __init__(self, *positional: object, **values: object) -> None:
        if "queue" in values:  # Ganga's name for the partition
            values["partition"] = values.pop("queue")
        super().__init__(*positional, **values)

    @property
    def queue(self) -> str:
        """Ganga's name for ``partition``."""
        return str(self.partition)

    @queue.setter
    def queue(self, value: object) -> None:
        self.partition = value

    def spec_options(self) -> dict[str, object]:
        """What the session puts in ``SubjobSpec.options`` (keys: ``script.OPTION_KEYS``)."""
        return {"partition": self.partition, "account": self.account, "qos": self.qos,
                "time": self.time, "max_running": self.max_running, "extra": list(self.extra)}

    def actor_key(self) -> tuple:
        return ("Slurm", self.conf) if self.conf else ("Slurm",)

    def check_submit(self) -> None:
        """Refuse, in one line, what Slurm itself would refuse: no sbatch here, a Slurm
        that does not answer, a partition it does not have."""
        commands.SlurmCommands(self.conf).check_partition(self.partition)

    def make_actor(self, name: str) -> object:
        from ...ray_runtime import RAY_NAMESPACE
        from .actor import start_slurm_actor

        return start_slurm_actor(name, conf=self.conf, namespace=RAY_NAMESPACE, get_if_exists=True)
