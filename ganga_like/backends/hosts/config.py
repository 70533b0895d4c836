"""``Hosts(...)``: run each subjob on labelled hosts (Ray nodes), scheduled the Autotest way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...model.component import Field, check_positive_int
from ..config import BackendConfig
from ..resources import ResourceFields

_NAME_FORM = "a host or label name: a non-empty string without spaces at either end"


def _check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    if value != value.strip():
        raise ValueError("spaces at either end")
    return value


def _check_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("got one string; give a list, e.g. ['node1']")
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"got {type(value).__name__}")
    out = []
    for item in value:
        if not isinstance(item, str) or not item or item != item.strip():
            raise ValueError(f"item {item!r} is not {_NAME_FORM}")
        out.append(item)
    if len(set(out)) != len(out):
        raise ValueError("a name appears twice")
    return tuple(out)


REBOOT_BEFORE = ("never", "if dirty", "always")
REBOOT_AFTER = ("never", "if all passed", "always")


def _choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError()  # the field's expected text names the choices
        return value
    return check


def _check_bool(value: object) -> bool:
    if value not in (True, False):
        raise TypeError(f"got {type(value).__name__}")
    return bool(value)


def _check_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError("not a number of seconds, 0 or more")
    return float(value)


class Hosts(ResourceFields, BackendConfig):
    """Run each subjob on hosts (Ray nodes) chosen by label, the Autotest way.

    ``Hosts(label='x86_64')`` runs on any ready host labelled x86_64 (a metahost,
    "run on any x86_64"); ``Hosts(hosts=['n1', 'n2'])`` on one of the named hosts;
    ``Hosts(atomic_group='rack', synch_count=2)`` on every ready host (at least 2,
    at most the group's max number of machines) of ONE instance of atomic group
    'rack', all started together. ``dependencies`` are labels every host used must
    have (and make "only if needed" hosts with those labels eligible).
    ``synch_count`` above 1 without an atomic group: run on exactly that many hosts
    at once; the subjob waits in Pending until all of them are ready.
    With no label and no hosts: any ready host that is neither "only if needed" nor
    in an atomic group. The subjob's Autotest status (Queued, Verifying, Pending,
    Starting, Running, Gathering) is its backend detail, or why it waits
    (HostsNotReady, GroupTooSmall, Pending).

    Before a subjob its hosts are cleaned if ``reboot_before`` says so, then verified
    (unless ``skip_verify``, or a host is protected "Do not verify"); after it, cleaned
    if ``reboot_after`` says so (a killed subjob's hosts always are). ``group_wait``:
    how long an atomic-group subjob may wait for more than ``synch_count`` Ready hosts
    (Autotest's scheduler waits 600 s) before it runs with those that are Ready.
    """

    label = Field("", _check_name, "a label name (a string), '' for any host",
                  "run on any ready host with this label (a metahost); with atomic_group: that instance")
    hosts = Field((), _check_names, "a list of host names, e.g. ['node1', 'node2']",
                  "explicit hosts to choose from (only-if-needed hosts allowed)")
    dependencies = Field((), _check_names, "a list of label names, e.g. ['gpu']",
                         "labels every host used must have")
    atomic_group = Field("", _check_name, "an atomic group name (a string), '' for none",
                         "run against one instance (label) of this atomic group")
    synch_count = Field(1, check_positive_int, "a positive whole number",
                        "hosts used at once: exact number, or the minimum with an atomic group")

    skip_verify = Field(False, _check_bool, "True or False",
                        "do not verify the hosts before the subjob runs")
    reboot_before = Field("if dirty", _choice(REBOOT_BEFORE), "one of 'never', 'if dirty', 'always'",
                          "clean the hosts before the subjob: never, if a subjob ran there since their "
                          "last cleanup, or always")
    reboot_after = Field("never", _choice(REBOOT_AFTER), "one of 'never', 'if all passed', 'always'",
                         "clean the hosts after the subjob: never, if it passed (exit code 0), or always")
    group_wait = Field(0.0, _check_seconds, "a number of seconds, 0 or more",
                       "atomic group: wait up to this long for more than synch_count hosts to be Ready")

    def request(self) -> dict[str, Any]:
        """What the subjob asks of the scheduler: goes into ``SubjobSpec.options``."""
        return {
            "label": self.label,
            "hosts": list(self.hosts),
            "dependencies": list(self.dependencies),
            "atomic_group": self.atomic_group,
            "synch_count": self.synch_count,
            "skip_verify": self.skip_verify,
            "reboot_before": self.reboot_before,
            "reboot_after": self.reboot_after,
            "group_wait": self.group_wait,
        }

    def spec_options(self) -> dict[str, Any]:
        """Every subjob's ``SubjobSpec.options``: the request the actor schedules."""
        return self.request()

    def actor_key(self) -> tuple:
        # ONE actor schedules every Hosts job of a repository: it alone can keep a
        # host from being given twice.
        return ("Hosts",)

    def make_actor(self, name: str) -> object:
        from ...ray_runtime import RAY_NAMESPACE
        from .actor import start_hosts_actor

        return start_hosts_actor(name, namespace=RAY_NAMESPACE, get_if_exists=True)
