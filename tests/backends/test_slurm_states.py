"""The Slurm backend without Slurm: its state table (and the docs' copy), what a task's
end turns into, the batch script and its arrays, and the settings refused as they are set."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess

import pytest

from ganga_like.backends import base
from ganga_like.backends.base import SubjobSpec
from ganga_like.backends.resources import Request
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.slurm import script, states
from ganga_like.backends.slurm.config import Slurm
from ganga_like.errors import InvalidValue
from ganga_like.status import Status

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "backends.md"
BEGIN, END = "<!-- slurm-states:begin -->", "<!-- slurm-states:end -->"


def test_the_docs_show_the_state_table_from_the_code():
    text = DOCS.read_text()
    shown = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert shown == states.table_markdown(), (
        "docs/backends.md's Slurm state table is out of date: run "
        ".venv/bin/python tests/backends/test_slurm_states.py --write-docs")


def test_every_state_slurm_reports_is_in_the_table():
    # The states of squeue's manual (job state codes), by their long names.
    reported = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "CONFIGURING", "COMPLETING", "DEADLINE",
                "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PENDING", "PREEMPTED", "RUNNING",
                "REQUEUED", "REQUEUE_HOLD", "REVOKED", "SIGNALING", "SPECIAL_EXIT", "STOPPED",
                "SUSPENDED", "TIMEOUT"}
    assert reported <= set(states.STATES)
    assert {s.status for s in states.STATES.values() if s.final} == {Status.COMPLETED, Status.FAILED,
                                                                      Status.KILLED}
    assert {s.status for s in states.STATES.values() if not s.final} == {Status.SUBMITTED, Status.RUNNING}


def _line(state: str, note: str) -> sf.StatusInfo:
    return sf.StatusInfo(state, note, 0.0)


@pytest.mark.parametrize(("state", "last", "kind", "code", "words"), [
    ("COMPLETED", _line(sf.RUN_DONE, "exit=0"), base.FINISHED, 0, "RUN_DONE"),
    ("FAILED", _line(sf.RUN_FAILED, "exit=3"), base.FINISHED, 3, "FAILED: ended with a non-zero"),
    ("TIMEOUT", _line(sf.KILLED, "exit=143 signal=TERM"), base.FINISHED, 143, "TIMEOUT: reached its time"),
    ("OUT_OF_MEMORY", None, base.LOST, None, "OUT_OF_MEMORY: used more memory"),
    ("NODE_FAIL", _line(sf.RUNNING, "pid=1 wrapper=2 marker=m"), base.LOST, None, "last status RUNNING"),
    ("PREEMPTED", _line(sf.RUN_DONE, "exit=0"), base.LOST, None, "PREEMPTED"),
    ("CANCELLED", _line(sf.KILLED, "exit=143"), base.KILLED, None, "cancelled with scancel"),
    ("", None, base.LOST, None, "no longer known to Slurm"),
    ("", _line(sf.RUN_DONE, "exit=0"), base.FINISHED, 0, "no longer known to Slurm"),
    ("WEIRD", None, base.LOST, None, "which this backend does not know"),
])
def test_how_a_task_that_ended_is_reported(state, last, kind, code, words):
    got_kind, got_code, note = states.final_event("12_3", state, last)
    assert (got_kind, got_code) == (kind, code), note
    assert words in note


def test_a_waiting_task_says_why_in_slurms_words_and_ours():
    assert states.detail("PENDING", "JobArrayTaskLimit") == "Slurm PENDING (JobArrayTaskLimit)"
    assert states.detail("RUNNING", "None") == "Slurm RUNNING"
    assert states.explain("PENDING", "Priority") == "other jobs of higher priority are ahead of it"
    assert states.explain("PENDING", "Licenses") == "waiting in Slurm's queue: Licenses"
    assert states.explain("SUSPENDED") == states.STATES["SUSPENDED"].meaning


def _spec(sub: int, workdir: str, cpus: float = 1, job: int = 7, **options: object) -> SubjobSpec:
    return SubjobSpec(job, sub, f"{job}.{sub}", "/bin/echo", ("a b", "$HOME", "it's"), {"X": "1 2"},
                      os.path.join(workdir, str(sub)), f"repo:{job}.{sub}", dict(options),
                      request=Request.of(cpus=cpus))


def test_subjobs_of_one_master_are_one_array_indexed_by_subjob_id(tmp_path):
    ws = str(tmp_path / "7")
    specs = [_spec(i, ws) for i in (0, 1, 2, 5, 9, 10)]
    (array,) = script.plan(specs)
    assert array.indices == (0, 1, 2, 5, 9, 10) and array.name == "repo:7.*"
    assert script.array_ranges(array.indices) == "0-2,5,9-10"
    assert script.marker_of(array.name, "9") == "repo:7.9"
    assert array.output() == os.path.join(ws, "%a", "slurm.out")
    options = script.sbatch_options(array, 4)
    assert options[0] == "--array=0-2,5,9-10%4" and "--cpus-per-task=1" in options


def test_subjobs_whose_requests_differ_go_as_separate_arrays(tmp_path):
    ws = str(tmp_path / "7")
    specs = [_spec(0, ws), _spec(1, ws, cpus=2), _spec(2, ws, partition="long"),
             SubjobSpec(8, None, "8", "/bin/true", (), {}, str(tmp_path / "8"), "repo:8")]
    arrays = script.plan(specs)
    assert [a.indices for a in arrays] == [(0,), (1,), (2,), (0,)]
    assert arrays[3].name == "repo:8" and script.marker_of("repo:8", "0") == "repo:8"
    options = script.sbatch_options(arrays[1], None)
    assert options[0] == "--array=1" and "--cpus-per-task=2" in options
    assert "--partition=long" in script.sbatch_options(arrays[2], None)
    asked = dataclasses.replace(specs[0], request=Request.of(cpus=0.5, gpus=2, memory="1.5GB",
                                                             resources={"bignode": 1}))
    (array,) = script.plan([asked])
    assert script.sbatch_options(array, None)[5:] == ["--cpus-per-task=1", "--mem=1536M",
                                                      "--gres=gpu:2,bignode:1"]


def test_a_master_past_slurms_array_limits_goes_as_several_arrays(tmp_path):
    """Task ids stay below MaxArraySize: subjob s is task s % M of its block's array,
    whose name carries the block's offset; an array holds at most max_array_tasks (and
    MaxJobCount) tasks."""
    ws = str(tmp_path / "7")
    specs = [_spec(i, ws) for i in (*range(0, 12), 15, 16, 17, 40)]
    arrays = script.plan(specs, script.Limits(array_size=16, array_tasks=5, job_count=10000))
    assert [(a.offset, a.indices, a.name) for a in arrays] == [
        (0, (0, 1, 2, 3, 4), "repo:7.*"), (0, (5, 6, 7, 8, 9), "repo:7.*"), (0, (10, 11, 15), "repo:7.*"),
        (16, (0, 1), "repo:7.*+16"), (32, (8,), "repo:7.*+32")]
    assert [script.marker_of(a.name, str(a.indices[-1])) for a in arrays] == [
        "repo:7.4", "repo:7.9", "repo:7.15", "repo:7.17", "repo:7.40"]
    assert script.marker_of("repo:7.*+16", "x") == "repo:7.*+16"  # not a task of it
    assert arrays[3].output() == os.path.join(ws, "slurm-tasks+16", "%a", "slurm.out")
    assert script.plan(specs, script.Limits(array_size=2000, job_count=3))[0].indices == (0, 1, 2)
    (resent,) = script.plan([_spec(17, ws)], script.Limits(array_size=16))  # always the same task id
    assert (resent.offset, resent.indices) == (16, (1,))


def test_an_array_with_an_offset_writes_into_its_subjobs_directories(tmp_path):
    ws = tmp_path / "7"
    for sub in (16, 17):
        (ws / str(sub)).mkdir(parents=True)
    (array,) = script.plan([_spec(16, str(ws)), _spec(17, str(ws))], script.Limits(array_size=16))
    script.write(array, ["/bin/true"])
    script.write(array, ["/bin/true"])  # again (a resubmit): the links are there already
    (ws / "slurm-tasks+16" / "1" / "slurm.out").write_text("hello")
    assert (ws / "17" / "slurm.out").read_text() == "hello"


def test_the_limits_are_read_from_scontrol_and_scancel_gets_one_word_per_array():
    from ganga_like.backends.slurm.commands import compact, parse_limits

    shown = ("MaxArraySize            = 1001\nMaxJobCount             = 10000\n"
             "SchedulerParameters     = batch_sched_delay=0,max_array_tasks=500\n")
    assert parse_limits(shown) == script.Limits(1001, 500, 10000)
    assert parse_limits("SchedulerParameters     = (null)\n") == script.Limits()
    assert script.Limits(1001, None, 10000).tasks_per_array() == 1001
    assert compact(["12_0", "12_1", "12_2", "12_7", "13_4", "99"]) == ["99", "12_[0-2,7]", "13_[4]"]


def test_slurms_own_words_for_a_task_it_ended_go_into_the_note(tmp_path):
    from ganga_like.backends.slurm.actor import slurm_wrote

    (tmp_path / "slurm.out").write_text(
        "slurmstepd-vm: error: *** JOB 1 ON vm CANCELLED AT 2026-12-06T09:52:10 ***\n"
        "slurmstepd-vm: error: StepId=1.batch exceeded memory limit (331501568 > 104857600), being killed\n"
        "slurmstepd-vm: error: Exceeded job memory limit\n"
        "slurmstepd-vm: error: StepId=1.batch exceeded memory limit (331501568 > 104857600), being killed\n")
    words = slurm_wrote(str(tmp_path))
    assert words == ("Exceeded job memory limit; StepId=1.batch exceeded memory limit "
                     "(331501568 > 104857600), being killed")
    assert slurm_wrote(str(tmp_path / "none")) == ""
    kind, _code, note = states.final_event("1_0", "FAILED", _line(sf.RUNNING, "pid=1"), words)
    assert kind == base.LOST and note.endswith("; Slurm wrote: " + words)
    assert "Slurm wrote" not in states.final_event("1_0", "CANCELLED", None, words)[2]
    assert "Slurm wrote" not in states.final_event("1_0", "COMPLETED", _line(sf.RUN_DONE, "exit=0"), words)[2]


def test_the_batch_script_runs_its_tasks_subjob_with_arguments_verbatim(tmp_path):
    """The script, run by bash as Slurm would (SLURM_ARRAY_TASK_ID set), execs the
    wrapper with the subjob's directory, program and arguments, its env and marker."""
    ws = str(tmp_path / "7")
    (array,) = script.plan([_spec(0, ws), _spec(4, ws)])
    printer = ["/bin/bash", "-c", 'printf "%s|" "$@" "$X" "$GANGA_LIKE_MARKER"', "wrapper"]
    path = tmp_path / "array.sh"
    path.write_text(script.text(array, printer))
    out = subprocess.run(["/bin/bash", str(path)], env={"SLURM_ARRAY_TASK_ID": "4", "PATH": os.defpath},
                         capture_output=True, text=True, check=True).stdout
    assert out == f"{ws}/4|/bin/echo|a b|$HOME|it's|1 2|repo:7.4|"
    other = subprocess.run(["/bin/bash", str(path)], env={"SLURM_ARRAY_TASK_ID": "3"},
                           capture_output=True, text=True)
    assert other.returncode == 2 and "no subjob is task 3" in other.stderr


def test_sbatch_runs_with_the_submitters_environment_without_slurms_own(tmp_path):
    spec = SubjobSpec(7, 0, "7.0", "/bin/true", (), {}, str(tmp_path), "m",
                      base_env={"HOME": "/h", "SLURM_JOB_ID": "5", "SBATCH_ARRAY_INX": "1", "RAY_X": "y"})
    assert script.submit_environment(spec, {"HOME": "/own"}) == {"HOME": "/h"}


@pytest.mark.parametrize(("field", "value", "words"), [
    ("time", "1h", "'MM', 'MM:SS', 'HH:MM:SS'"),
    ("time", "10:61:00:00", "not a Slurm time limit"),
    ("extra", ["--output=/tmp/x"], "would override the backend's own --output"),
    ("extra", ["-o", "/tmp/x"], "would override the backend's own --output"),
    ("extra", ["--arr=0-3"], "would override the backend's own --array"),
    ("extra", ["-a", "1"], "--array"),
    ("extra", ["--partition=x"], "use Slurm(partition=...)"),
    ("extra", ["haswell"], "is not an sbatch option"),
    ("extra", "--constraint=x", "a list of sbatch options"),
    ("memory", "4 apples", "'4GB'"),
    ("cpus", 0, "a number of CPUs > 0"),
    ("gpus", -1, "a whole number of GPUs >= 0"),
])
def test_a_bad_setting_is_refused_in_one_line_naming_what_is_valid(field, value, words):
    with pytest.raises(InvalidValue) as raised:
        Slurm(**{field: value})
    message = str(raised.value)
    assert "\n" not in message and words in message, message


def test_good_settings_and_ganga_names():
    backend = Slurm(queue="long", time="1-02:00", memory="1.5GB", extra=["--constraint", "x86",
                                                                         "--mail-type=END"])
    assert backend.partition == "long" and backend.queue == "long"
    assert backend.memory == 1536 and backend.time == "1-02:00"
    assert Slurm(time=90).time == "90" and Slurm(memory=500).memory == 500
    assert backend.spec_options()["extra"] == ["--constraint", "x86", "--mail-type=END"]


def write_docs() -> None:
    text = DOCS.read_text()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOCS.write_text(text[:start] + "\n" + states.table_markdown() + "\n" + text[stop:])
    print(f"rewrote the Slurm state table in {DOCS}")


if __name__ == "__main__":
    write_docs()


def test_what_each_node_has_is_read_from_sinfo():
    from ganga_like.backends.slurm.commands import parse_nodes

    nodes = parse_nodes("a|8|8000|gpu:2\na|8|8000|gpu:2\n"
                        "b|4|1000|gpu:tesla:1(S:0),bignode:3\nc|2|500|(null)\n")
    assert [(n.name, n.cpus, n.gpu_ids, n.memory_mb, n.resources) for n in nodes] == [
        ("node a", 8.0, (0, 1), 8000.0, ()), ("node b", 4.0, (0,), 1000.0, (("bignode", 3),)),
        ("node c", 2.0, (), 500.0, ())]


def test_the_test_slurm_says_why_it_cannot_start(monkeypatch, tmp_path):
    """Where Slurm is not installed, the fixture fails the tests that need it with this
    reason (CI must run them: .ci/run installs Slurm)."""
    from tests import slurm_cluster

    monkeypatch.setenv("PATH", str(tmp_path))  # Slurm's commands are not on it
    with pytest.raises(slurm_cluster.SlurmUnavailable) as raised:
        slurm_cluster.start(str(tmp_path / "root"))
    message = str(raised.value)
    assert "Slurm is not installed here (missing: sbatch, squeue, scancel, sacct, sinfo, scontrol)" in message
    assert "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge" in message
    assert not (tmp_path / "root").exists()  # nothing started, nothing made


def test_a_rounds_news_goes_out_as_it_happened():
    """Tasks that started and ended between two rounds give their starts and ends at the
    times their wrappers wrote, so the stream shows what ran side by side. Not at the
    wrappers' process start times: Linux counts those from a boot time in whole seconds
    (here up to a second early), which would show c started before a ended."""
    from ganga_like.backends.base import Handle
    from ganga_like.backends.slurm.actor import FINAL_ORDER, News, SlurmRun, in_time_order

    def ran(name: str, start: float, end: float) -> tuple[SlurmRun, News]:
        handle = Handle("Slurm", name, pid=1, create_time=start - 0.9, task_id=f"9_{name}")
        return (SlurmRun(name, "/w", "m", handle, slurm_id=f"9_{name}"),
                News(FINAL_ORDER, base.FINISHED, 0, "RUN_DONE exit=0", handle=handle, when=end,
                     started=start))

    steps = in_time_order([ran("c", 3.5, 5.0), ran("a", 1.0, 3.0), ran("b", 2.0, 4.0)])
    assert [(run.fqid, news.kind) for run, news in steps] == [
        ("a", "started"), ("b", "started"), ("a", "finished"), ("c", "started"), ("b", "finished"),
        ("c", "finished")]
    assert all(news.handle is None for _run, news in steps if news.kind == "finished")
