"""Why a service could not start: one line naming the way out, for each known cause
(the ones a test cannot cheaply provoke for real; tests/service/test_start_failures.py
provokes the others through the real command)."""

from __future__ import annotations

import errno

import pytest

from ganga_like.channel.paths import ServicePaths
from ganga_like.errors import ConfigurationError
from ganga_like.service.start_failure import explain

PATHS = ServicePaths("/home/me/gl")
DATABASE = "/home/me/gl/repository/jobs.fs"


@pytest.mark.parametrize("exc, words", [
    (OSError(errno.EADDRINUSE, "Address already in use"),
     ["address to listen on is in use", "choose another --listen HOST:PORT"]),
    (OSError(errno.ENOSPC, "No space left on device", "/home/me/gl/service.json"),
     ["the disk holding /home/me/gl/service.json is full", "free some space"]),
    (OSError(errno.EACCES, "Permission denied", "/home/me/gl/repository"),
     ["cannot write /home/me/gl/repository (Permission denied)", "another repository with GANGA_LIKE_DIR"]),
    (OSError(errno.EROFS, "Read-only file system", "/tmp/ray"),
     ["cannot write /tmp/ray (Read-only file system); make it writable by you"]),
    (ConfigurationError("GANGA_LIKE_OUTPUT_GROUP='x' is not one of your groups"),
     ["GANGA_LIKE_OUTPUT_GROUP='x' is not one of your groups"]),
    (RuntimeError("something new\nwith a second line"),
     ["RuntimeError: something new", "see /home/me/gl/service.log"]),
])
def test_each_cause_is_one_line_with_the_way_out(exc, words):
    line = explain(exc, PATHS, DATABASE)
    assert "\n" not in line
    assert all(word in line for word in words), line


def test_a_read_only_place_outside_the_root_does_not_suggest_another_repository():
    line = explain(OSError(errno.EACCES, "Permission denied", "/tmp/ray"), PATHS, DATABASE)
    assert "GANGA_LIKE_DIR" not in line
