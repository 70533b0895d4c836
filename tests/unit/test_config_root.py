"""Where the repository is: GANGA_LIKE_DIR, and what an empty value means."""

from __future__ import annotations

import os
import pwd

import pytest

from ganga_like.config import Config
from ganga_like.errors import ConfigurationError


@pytest.mark.parametrize("value", ["", "   "])
def test_a_set_but_empty_GANGA_LIKE_DIR_means_the_default_never_the_current_directory(value, tmp_path):
    root = Config.from_env({"GANGA_LIKE_DIR": value, "HOME": os.environ["HOME"]}).root
    assert root == os.path.expanduser("~/gangalike")
    assert root != os.getcwd()


def test_GANGA_LIKE_DIR_names_the_root():
    assert Config.from_env({"GANGA_LIKE_DIR": "/data/me/gl"}).root == "/data/me/gl"


@pytest.mark.parametrize("home", ["", "relative/home"])
def test_a_home_set_but_empty_or_relative_is_refused_in_one_line_naming_both_ways_out(home):
    """Else the default root would be /gangalike, or a directory under wherever the
    command runs."""
    with pytest.raises(ConfigurationError) as caught:
        Config.from_env({"HOME": home})
    line = str(caught.value)
    assert "\n" not in line
    assert f"HOME is {home!r}" in line and "set HOME" in line and "GANGA_LIKE_DIR" in line


def test_without_HOME_the_default_root_is_in_the_password_databases_home():
    assert Config.from_env({}).root == os.path.join(pwd.getpwuid(os.getuid()).pw_dir, "gangalike")


@pytest.mark.parametrize("env", [{"HOME": ""}, {"HOME": "", "GANGA_LIKE_DIR": "/data/me/gl"}])
def test_a_root_given_needs_no_home(env):
    """The service is started with ``--root``, and GANGA_LIKE_DIR names it: HOME is not read."""
    assert Config.from_env(env, root="/data/me/gl").root == "/data/me/gl"
    assert Config.from_env({**env, "GANGA_LIKE_DIR": "/data/me/gl"}).root == "/data/me/gl"
