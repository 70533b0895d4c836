"""Ganga's job attributes, equality, read-only refusals, the tree display and help:
in-memory jobs, no session."""

from __future__ import annotations

import datetime

import pytest

from ganga_like.backends.local.config import Local
from ganga_like.errors import NotAvailable, ProtectedAttributeError, ReadOnlyAttribute, UnknownAttribute
from ganga_like.model.application import Executable
from ganga_like.model.counts import StatusCounts
from ganga_like.model.files import UNAVAILABLE_FILES, File, LocalFile
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.splitters import ArgSplitter, GenericSplitter

# --- list-valued fields ------------------------------------------------------------------

def test_a_list_field_equals_an_equal_plain_list():
    assert Executable(args=["a"]).args == ["a"]
    assert ["a"] == Executable(args=["a"]).args
    assert Executable(args=["a"]).args != ["b"]
    assert not (Executable(args=["a"]).args != ["a"])
    assert ArgSplitter(args=[["x"], ["y", "z"]]).args == [["x"], ["y", "z"]]
    assert GenericSplitter(attribute="application.exe", values=["a", "b"]).values == ["a", "b"]


def test_a_list_field_stored_as_a_plain_tuple_by_an_older_version_still_compares_as_a_list():
    app = Executable()
    app.__dict__["args"] = ("old", "record")  # what an older version stored
    assert app.args == ["old", "record"] and repr(app.args) == "['old', 'record']"


def test_adding_to_a_list_field_gives_a_list_to_assign():
    app = Executable(args=["a"])
    app.args = app.args + ["b"]
    app.args += ["c"]  # becomes an assignment: validated and kept
    assert app.args == ["a", "b", "c"]
    app.args[0] = "z"  # in place, as Ganga's lists take it: an assignment too
    assert app.args == ["z", "b", "c"]


# --- unknown and read-only attributes -----------------------------------------------------

def test_a_misspelt_attribute_is_refused_in_one_line_listing_the_real_ones():
    with pytest.raises(UnknownAttribute) as info:
        Local().concurency = 4
    assert str(info.value) == ("Local has no attribute 'concurency'; the attributes you can "
                               "set are: cpus, gpus, memory, resources, concurrency, gpu_ids")
    with pytest.raises(UnknownAttribute, match="spliter.*splitter"):
        Job().spliter = ArgSplitter(args=[["1"]])


@pytest.mark.parametrize("target, name", [
    ("job", "inputdir"), ("job", "outputdir"), ("job", "fqid"), ("job", "info"),
    ("job", "time"), ("job", "subjobs"), ("backend", "id"), ("backend", "exitcode"),
    ("backend", "actualCE"), ("info", "submit_counter"), ("info", "uuid"),
    ("time", "timestamps"), ("time", "new"),
])
def test_read_only_attributes_refuse_assignment_in_one_line(target, name):
    job = Job(backend=Local())
    obj = {"job": job, "backend": job.backend, "info": job.info, "time": job.time}[target]
    with pytest.raises(ProtectedAttributeError) as info:  # Ganga's name catches it
        setattr(obj, name, 1)
    assert isinstance(info.value, ReadOnlyAttribute)
    message = str(info.value)
    assert "\n" not in message and "read-only" in message and "can set are" in message


def test_a_refused_assignment_leaves_nothing_to_commit():
    """persistent marks an object changed before it calls a descriptor's setter: a
    refused edit must be refused before that, or a script's next commit would write
    (or conflict on) a job nobody changed."""
    import transaction
    import ZODB

    db = ZODB.DB(None)
    connection = db.open()
    job = Job(backend=Local())
    connection.root()["job"] = job
    transaction.commit()
    for obj, name in [(job, "fqid"), (job, "inputdir"), (job.backend, "id"), (job.backend, "exitcode")]:
        with pytest.raises(ReadOnlyAttribute):
            setattr(obj, name, 3)
        assert not obj._p_changed, name
    connection.close()
    db.close()


# --- run attributes, info, time ----------------------------------------------------------------

def _ran(job: Job, pid: int = 4242, host: str = "node7", code: int = 0) -> Job:
    set_status(job, "submitting", now=100.0)
    job.submit_counter = 1
    job.handle = ("Local", job.fqid, host, pid, 1.0, "", "/w/1", "", 1)
    set_status(job, "submitted", now=101.0)
    set_status(job, "running", now=102.0)
    job.exit_code = code
    set_status(job, "completing", now=105.0)
    set_status(job, "completed" if code == 0 else "failed", now=106.0)
    return job


def test_backend_shows_the_run_of_its_job_and_nothing_before():
    job = Job(backend=Local())
    assert (job.backend.id, job.backend.exitcode, job.backend.actualCE) == (-1, None, "")
    _ran(job, code=3)
    assert (job.backend.id, job.backend.exitcode, job.backend.actualCE) == (4242, 3, "node7")
    assert job.backend.workdir == "/w/1"
    job.submit_counter = 2  # a resubmission began: the old run is not this run
    assert job.backend.id == -1
    assert job.backend.copy().id == -1  # a copy belongs to no job


def test_time_gives_utc_datetimes_and_the_backends_details():
    job = _ran(Job(backend=Local()))
    start = datetime.datetime(1970, 1, 1)
    assert job.time.submitted() == start + datetime.timedelta(seconds=101)
    assert job.time.final() == start + datetime.timedelta(seconds=106)
    assert job.time.backend_final() == start + datetime.timedelta(seconds=105)
    assert job.time.runtime() == datetime.timedelta(seconds=3)
    assert job.time.waittime() == datetime.timedelta(seconds=1)
    assert job.time.details() == {"START": start + datetime.timedelta(seconds=102),
                                  "STOP": start + datetime.timedelta(seconds=105),
                                  "HOST": "node7", "ID": 4242, "EXITCODE": 0}
    assert "1970/01/01 00:01:46 - final" in job.time.display()
    assert "1970/01/01 00:01:46 - final" in repr(job.time)


def test_info_counts_submissions_and_has_a_stable_uuid():
    job = Job()
    assert job.info.submit_counter == 0 and job.info.uuid == ""
    job.id, job.workspace = 7, "/root/workspace/7"
    assert job.info.uuid == Job.info.getter(job).uuid and len(job.info.uuid) == 36
    assert job.info.monitoring_links == [] and job.info.monitor is None


def test_directories_end_with_a_separator_as_in_ganga():
    job = Job()
    assert job.outputdir == "" and job.inputdir == ""
    job.workspace = "/r/workspace/3"
    assert job.outputdir == "/r/workspace/3/output/" and job.inputdir == "/r/workspace/3/input/"


# --- equality --------------------------------------------------------------------------------

def test_a_new_job_equals_its_copy_and_not_once_it_ran():
    job = Job(application=Executable(exe="/bin/echo", args=["a"]), backend=Local(),
              splitter=ArgSplitter(args=[["1"], ["2"]]), name="n")
    assert job == job.copy() and not (job != job.copy())
    other = job.copy()
    other.application = Executable(exe="/bin/echo", args=["b"])
    assert job != other
    before = job.copy()
    _ran(job)
    assert job != before  # status and submit counter differ, as in Ganga
    assert len({job, before}) == 2  # still usable in sets


def test_two_subjobs_of_one_master_are_never_equal():
    from BTrees.IOBTree import IOBTree

    master = Job(application=Executable(exe="/bin/true", args=[]), backend=Local())
    tree = IOBTree()
    for i in range(2):
        sub = Job.__new__(Job)
        sub.__dict__.update(id=i, master=master, _overrides={})
        tree[i] = sub
    master._subjobs = tree
    master._counts = StatusCounts({"new": 2})
    assert tree[0] == tree[0] and tree[0] != tree[1]
    assert tree[1] not in [tree[0]]


# --- the tree ---------------------------------------------------------------------------------

class _Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"the subjobs were read ({name})")


def test_print_shows_the_whole_configuration_and_a_big_master_by_its_counts_only():
    job = Job(application=Executable(exe="/bin/echo", args=["a", "b"]), backend=Local(),
              splitter=ArgSplitter(args=[["1"]]), outputfiles=[LocalFile("*.txt")])
    job.id = 5
    job._subjobs = _Untouchable()
    job._counts = StatusCounts({"completed": 9998, "failed": 2})
    text = str(job)
    for expected in ("id = 5", "status = 'failed'", "exe = '/bin/echo'", "args = ['a', 'b']",
                     "backend = Local (", "concurrency = None", "id = -1",
                     "splitter = ArgSplitter (", "namePattern = '*.txt'",
                     "subjobs = '10000 subjobs: failed:2 completed:9998",
                     "info = JobInfo (", "time = JobTime ("):
        assert expected in text, expected


def test_a_subjob_prints_its_own_run():
    from BTrees.IOBTree import IOBTree

    master = Job(application=Executable(exe="/bin/echo", args=["x"]), backend=Local())
    master.id = 2
    sub = Job.__new__(Job)
    sub.__dict__.update(id=0, master=master, _overrides={"application.args": ("y",)})
    master._subjobs = IOBTree({0: sub})
    master._counts = StatusCounts({"new": 1})
    _ran(sub, pid=99)
    text = str(sub)
    assert "fqid = '2.0'" in text and "args = ['y']" in text and "id = 99" in text
    assert "master = 2" in text


# --- help ---------------------------------------------------------------------------------------

def test_help_of_job_names_every_user_field_and_verb_and_no_storage_internals():
    from ganga_like.gpi.helptext import help_text

    text = help_text(Job)
    for word in ("application", "backend", "splitter", "postprocessors", "inputfiles",
                 "outputfiles", "do_auto_resubmit", "inputdir", "outputdir", "info", "time",
                 "submit(", "kill(", "resubmit(", "remove(", "copy(", "peek(", "wait(",
                 "force_status(", "freeze(", "unmonitor("):
        assert word in text, word
    for internal in ("_p_", "ZODB", "persistent", "Persistent", "ghost", "_overrides"):
        assert internal not in text, internal
    assert "exitcode" in help_text(Local) and "concurrency" in help_text(Local)


# --- files ----------------------------------------------------------------------------------------

def test_file_is_an_executable_or_an_input_and_never_an_output(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    assert Executable(exe=File(str(script))).exe == File(str(script))  # kept a File: sent with the job
    job = Job(inputfiles=[File(str(script), subdir="sub")])
    copied = job.inputfiles[0].stage(str(tmp_path / "w"))
    assert copied == [str(tmp_path / "w" / "input" / "run.sh")]
    assert (tmp_path / "w" / "output" / "sub" / "run.sh").read_text() == script.read_text()
    with pytest.raises(Exception, match="LocalFile"):
        Job(outputfiles=[File(str(script))])


@pytest.mark.parametrize("name", sorted(UNAVAILABLE_FILES))
def test_gangas_remote_file_types_say_in_one_line_they_are_not_available(name):
    with pytest.raises(NotAvailable) as info:
        UNAVAILABLE_FILES[name]("x.root")
    assert str(info.value).startswith(f"{name} is not available") and "LocalFile" in str(info.value)


# --- config ---------------------------------------------------------------------------------------

def test_config_reads_gangas_sections_and_refuses_unknown_ones_in_one_line(monkeypatch, tmp_path):
    from ganga_like.errors import ConfigurationError
    from ganga_like.gpi.gangaconfig import config

    monkeypatch.setenv("GANGA_LIKE_DIR", str(tmp_path / "gl"))
    assert config["Configuration"]["gangadir"] == str(tmp_path / "gl")
    assert config.Local.location == str(tmp_path / "gl" / "workspace")
    assert "Logging" in config and config["PollThread"]["autostart"] is True
    with pytest.raises(ConfigurationError, match="sections are: Configuration, Local"):
        config["Nope"]
    with pytest.raises(ConfigurationError, match="options are: location"):
        config.Local["nope"]
    with pytest.raises(ConfigurationError, match="GANGA_LIKE_DIR"):
        config["Configuration"]["gangadir"] = "/elsewhere"


def test_reading_a_misspelt_attribute_is_one_line_naming_the_nearest():
    from ganga_like.errors import NoSuchAttribute

    j = Job()
    with pytest.raises(NoSuchAttribute, match=r"^Job has no attribute 'stauts'; did you mean 'status'\?"):
        j.stauts  # noqa: B018
    with pytest.raises(AttributeError, match="did you mean 'exe'"):  # an AttributeError too
        j.application.exee  # noqa: B018
    assert not hasattr(j, "nothing_like_it") and getattr(j.backend, "nope", 7) == 7
    assert "\n" not in str(NoSuchAttribute("Job", "x", ["status"]))
