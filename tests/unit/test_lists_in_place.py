"""Ganga's list attributes edited in place (issue 19): ``args.append``, ``+=``, ``[i] =``,
``del``, ``pop``, ... are assignments: checked as one, refused whole, and stored."""

from __future__ import annotations

import copy
import pickle

import pytest
from persistent import Persistent

from ganga_like.errors import InvalidValue, ReadOnlyError
from ganga_like.model.application import Executable
from ganga_like.model.files import LocalFile
from ganga_like.model.job import Job
from ganga_like.model.postprocessors import TextMerger
from ganga_like.status import Status


def test_every_list_method_edits_the_field_and_the_list_read():
    app = Executable(args=["a"])
    args = app.args
    args.append("b")
    args.extend(["c", 4])  # a number becomes its string, as on assignment
    assert args == ["a", "b", "c", "4"] and app.args == ["a", "b", "c", "4"]
    args.insert(0, "z")
    args[1] = "A"
    del args[2]
    assert args.pop() == "4" and args.pop(0) == "z"
    args.remove("A")
    args += ["y", "x"]
    args.sort()
    args.reverse()
    assert app.args == ["y", "x", "c"] == args
    args *= 2
    assert app.args == ["y", "x", "c", "y", "x", "c"]
    args.clear()
    assert app.args == [] and args == []


def test_a_refused_edit_changes_nothing_and_says_why_in_one_line():
    app = Executable(args=["a"])
    with pytest.raises(InvalidValue, match="a list of strings"):
        app.args.append(None)
    with pytest.raises(InvalidValue):
        app.args[0] = "nul\0"
    assert app.args == ["a"]


def test_job_lists_take_in_place_edits_checked_as_assignments():
    j = Job()
    j.inputfiles += [LocalFile("a.txt")]
    j.inputfiles.append(LocalFile("b.txt"))
    j.postprocessors.append(TextMerger(files=["stdout"]))
    j.outputfiles.extend([LocalFile("*.root")])
    assert [f.namePattern for f in j.inputfiles] == ["a.txt", "b.txt"]
    assert len(j.postprocessors) == 1 and j.outputfiles[0].namePattern == "*.root"
    assert all(f._owner_job is j for f in j.inputfiles)  # owned, as on assignment
    with pytest.raises(InvalidValue, match="one of the files"):
        j.inputfiles.append(3)
    assert len(j.inputfiles) == 2


def test_a_submitted_job_refuses_in_place_edits_as_it_refuses_assignments():
    j = Job(application=Executable(args=["a"]), inputfiles=[LocalFile("a.txt")])
    Persistent.__setattr__(j, "_status", Status.SUBMITTED.value)
    with pytest.raises(ReadOnlyError):
        j.application.args.append("b")
    with pytest.raises(ReadOnlyError):
        j.inputfiles += [LocalFile("b.txt")]
    assert j.application.args == ["a"] and len(j.inputfiles) == 1


def test_the_list_read_stores_and_copies_as_a_plain_tuple_without_its_owner():
    app = Executable(args=["a", "b"])
    assert pickle.loads(pickle.dumps(app.args)) == ("a", "b")
    assert copy.deepcopy(app.args) == ("a", "b") and copy.copy(app.args) == ["a", "b"]
    assert app.args == ("a", "b") and app.args != ["a"]
    copied = app.copy()
    copied.args.append("c")
    assert app.args == ["a", "b"] and copied.args == ["a", "b", "c"]


def test_dict_attributes_take_in_place_edits_too():
    app = Executable(env={"A": "1"})
    env = app.env
    env["B"] = 2  # a number becomes its string, as on assignment
    env.update(C="3")
    env |= {"D": "4"}
    assert env.pop("A") == "1" and env.setdefault("E", "5") == "5"
    del env["D"]
    assert app.env == {"B": "2", "C": "3", "E": "5"} == env
    with pytest.raises(InvalidValue, match="bad variable name"):
        env["A=B"] = "x"
    assert app.env == {"B": "2", "C": "3", "E": "5"}
    assert pickle.loads(pickle.dumps(env)) == dict(env) and type(copy.deepcopy(env)) is dict
    env.clear()
    assert app.env == {}
