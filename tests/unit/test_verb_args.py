"""A verb's arguments of the wrong kind are refused in one line, before anything is sent
or done (model.session.check_args: both sessions call it)."""

from __future__ import annotations

import pytest

from ganga_like.errors import InvalidValue
from ganga_like.model.session import JOB_VERBS, check_args


@pytest.mark.parametrize(("verb", "args", "expected"), [
    ("wait", {"timeout": "soon"}, "a number of seconds, 0 or more, or None"),
    ("wait", {"timeout": float("nan")}, "a number of seconds"),
    ("wait", {"timeout": -1}, "a number of seconds"),
    ("wait", {"poll": True}, "a number of seconds"),
    ("peek", {"lines": -5}, "a whole number, 0 or more"),
    ("peek", {"lines": 2.5}, "a whole number"),
    ("peek", {"file": 3}, "a string"),
    ("remove", {"force": "yes"}, "True or False"),
    ("resubmit", {"only_failed": 2}, "True, False or None"),
])
def test_a_wrong_kind_is_one_line_naming_the_verb_the_argument_and_the_choices(verb, args, expected):
    with pytest.raises(InvalidValue) as info:
        check_args(JOB_VERBS[verb], args)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{verb}().{next(iter(args))} = ")
    assert expected in message


def test_what_ganga_scripts_pass_is_taken():
    check_args(JOB_VERBS["remove"], {"force": 1})  # j.remove(force=1): the admin's escape
    check_args(JOB_VERBS["wait"], {"timeout": 60, "poll": 0.5})
    check_args(JOB_VERBS["wait"], {"timeout": None})
    check_args(JOB_VERBS["peek"], {"file": "stderr", "lines": 0})
    check_args(JOB_VERBS["resubmit"], {"force": False, "include_killed": 0, "only_failed": None})
